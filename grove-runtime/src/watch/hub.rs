//! [`WatchHub`]: one notify watcher (one inotify instance, one thread) for everything an
//! engine watches — module libraries, crate sources, config files — routing each event to
//! the subscribers of the directory it happened in.
//!
//! Directory watches are shared and counted: many modules built into one `target/debug`
//! make one inotify watch, removed when the last of them unsubscribes. A recursive watch
//! (a crate's `src/`) covers the directories under it: a subscriber of one of those gets
//! its events through it, without a watch of its own, and gets one back when the recursive
//! watch goes.
//!
//! notify calls the hub's handler on its own thread. The handler only reads the routing
//! table and hands each event to its subscribers' sinks, which must not block (they send on
//! a channel, or stamp a time): registering a watch waits for notify's thread, so nothing
//! that thread runs may wait for a registration.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::WatchError;

/// What a subscriber is handed: every event in its directory (or under it, when recursive).
/// Runs on notify's thread: it must not block.
pub(crate) type Sink = Arc<dyn Fn(&notify::Event) + Send + Sync>;

/// The engine's one watcher. Cheap to clone; the watcher and its thread are made on the
/// first subscription and end with the last clone and subscription.
#[derive(Clone, Default)]
pub(crate) struct WatchHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WatchHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self.inner.routes();
        f.debug_struct("WatchHub")
            .field("directories", &routes.dirs.len())
            .field(
                "watched",
                &routes.dirs.values().filter(|d| d.watched.is_some()).count(),
            )
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    /// `None` until the first subscription. Held while notify is asked anything, which
    /// serialises every change of the watches.
    watcher: Mutex<Option<RecommendedWatcher>>,
    /// Shared with notify's handler.
    routes: Arc<Mutex<Routes>>,
}

impl Inner {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        lock(&self.routes)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Subscribed directories.
#[derive(Default)]
struct Routes {
    dirs: HashMap<PathBuf, Dir>,
    next_id: u64,
}

/// One subscribed directory.
#[derive(Default)]
struct Dir {
    subscribers: Vec<Subscriber>,
    /// The watch notify holds for this directory itself, as asked for; `None` when it has
    /// none (no subscriber, or covered by a recursive watch of a directory above it).
    watched: Option<RecursiveMode>,
    /// Removed or moved away while watched: the kernel dropped the watch with it.
    lost: bool,
}

struct Subscriber {
    id: u64,
    recursive: bool,
    /// The names in the directory whose events it wants; every name when empty.
    names: Vec<OsString>,
    sink: Sink,
}

impl Subscriber {
    /// Whether it wants the event of `path`, `depth` levels under its directory (0: the
    /// directory itself).
    fn wants(&self, path: &Path, depth: usize) -> bool {
        match depth {
            0 => true,
            1 => {
                self.names.is_empty()
                    || path
                        .file_name()
                        .is_some_and(|name| self.names.iter().any(|n| n == name))
            }
            _ => self.recursive,
        }
    }
}

impl Dir {
    /// The watch the directory needs for its subscribers, ignoring cover.
    fn mode(&self) -> Option<RecursiveMode> {
        if self.subscribers.is_empty() {
            None
        } else if self.subscribers.iter().any(|s| s.recursive) {
            Some(RecursiveMode::Recursive)
        } else {
            Some(RecursiveMode::NonRecursive)
        }
    }
}

impl Routes {
    /// Whether a directory strictly above `dir` holds a recursive watch.
    fn covered(&self, dir: &Path) -> bool {
        dir.ancestors().skip(1).any(|above| {
            self.dirs
                .get(above)
                .is_some_and(|d| d.watched == Some(RecursiveMode::Recursive) && !d.lost)
        })
    }

    /// The sinks `event` concerns: the subscribers of each path's directory, of the path
    /// itself (a watched directory's own removal), and of recursive watches above it. A
    /// rescan or an event without paths concerns everyone.
    fn sinks_for(&self, event: &notify::Event) -> Vec<Sink> {
        let mut sinks: Vec<(u64, Sink)> = Vec::new();
        let mut add = |s: &Subscriber| {
            if !sinks.iter().any(|(id, _)| *id == s.id) {
                sinks.push((s.id, Arc::clone(&s.sink)));
            }
        };
        if event.paths.is_empty() || event.need_rescan() {
            self.dirs
                .values()
                .flat_map(|d| &d.subscribers)
                .for_each(add);
        } else {
            for path in &event.paths {
                for (depth, above) in path.ancestors().enumerate() {
                    let Some(dir) = self.dirs.get(above) else {
                        continue;
                    };
                    for subscriber in &dir.subscribers {
                        if subscriber.wants(path, depth) {
                            add(subscriber);
                        }
                    }
                }
            }
        }
        sinks.into_iter().map(|(_, sink)| sink).collect()
    }

    /// Marks watched directories that `event` says were removed or moved away.
    fn mark_lost(&mut self, event: &notify::Event) {
        let gone = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
        );
        if !gone {
            return;
        }
        for path in &event.paths {
            if let Some(dir) = self.dirs.get_mut(path)
                && dir.watched.is_some()
            {
                dir.lost = true;
            }
        }
    }
}

/// A subscription to one directory's events. Dropping it unsubscribes (and removes the
/// directory's watch if nobody else needs it).
pub(crate) struct Subscription {
    inner: Arc<Inner>,
    dir: PathBuf,
    id: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("dir", &self.dir)
            .finish()
    }
}

impl Subscription {
    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut watcher = lock(&self.inner.watcher);
        {
            let mut routes = self.inner.routes();
            let Some(dir) = routes.dirs.get_mut(&self.dir) else {
                return;
            };
            dir.subscribers.retain(|s| s.id != self.id);
        }
        if let Some(watcher) = watcher.as_mut()
            && let Err(e) = reconcile(watcher, &self.inner.routes, &self.dir)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot change the directory's watch after an unsubscribe");
        }
        let mut routes = self.inner.routes();
        if routes
            .dirs
            .get(&self.dir)
            .is_some_and(|d| d.subscribers.is_empty() && d.watched.is_none())
        {
            routes.dirs.remove(&self.dir);
        }
    }
}

impl WatchHub {
    /// Hands `sink` every event in `dir` (and under it, when `mode` is recursive) until the
    /// subscription is dropped; only those of the entries called `names` in `dir` (and of
    /// `dir` itself) when `names` is not empty. `dir` must exist.
    pub(crate) fn subscribe(
        &self,
        dir: &Path,
        mode: RecursiveMode,
        names: Vec<OsString>,
        sink: Sink,
    ) -> Result<Subscription, WatchError> {
        let mut guard = lock(&self.inner.watcher);
        if guard.is_none() {
            *guard = Some(new_watcher(&self.inner.routes)?);
        }
        let watcher = guard.as_mut().expect("made above");
        let id = {
            let mut routes = self.inner.routes();
            routes.next_id += 1;
            let id = routes.next_id;
            routes
                .dirs
                .entry(dir.to_owned())
                .or_default()
                .subscribers
                .push(Subscriber {
                    id,
                    recursive: mode == RecursiveMode::Recursive,
                    names,
                    sink,
                });
            id
        };
        let subscription = Subscription {
            inner: Arc::clone(&self.inner),
            dir: dir.to_owned(),
            id,
        };
        let watched = reconcile(watcher, &self.inner.routes, dir);
        // The subscription's drop (which undoes it on error) takes the lock again.
        drop(guard);
        watched.map(|()| subscription)
    }

    /// Watches `dir` again after it was removed (or moved away) and came back: what its
    /// subscribers call once they see it is there again. Does nothing if its watch was not
    /// lost (another subscriber of the same directory renewed it first).
    pub(crate) fn rewatch(&self, dir: &Path) -> Result<(), WatchError> {
        let mut watcher = lock(&self.inner.watcher);
        let Some(watcher) = watcher.as_mut() else {
            return Ok(());
        };
        let mode = {
            let mut routes = self.inner.routes();
            let Some(entry) = routes.dirs.get_mut(dir) else {
                return Ok(());
            };
            if !entry.lost {
                return Ok(());
            }
            entry.watched.take()
        };
        if let Some(mode) = mode {
            // notify may still hold the old watch (a directory moved away): drop it.
            let _ = watcher.unwatch(dir);
            if mode == RecursiveMode::Recursive {
                // Everything under it went with it.
                let mut routes = self.inner.routes();
                for (path, below) in routes.dirs.iter_mut() {
                    if path.starts_with(dir) && path != dir {
                        below.watched = None;
                    }
                }
            }
        }
        reconcile(watcher, &self.inner.routes, dir)?;
        if let Some(entry) = self.inner.routes().dirs.get_mut(dir) {
            entry.lost = false;
        }
        Ok(())
    }

    /// How many directories notify watches for the hub (recursive watches count once).
    #[cfg(test)]
    pub(crate) fn watched_dirs(&self) -> usize {
        self.inner
            .routes()
            .dirs
            .values()
            .filter(|d| d.watched.is_some())
            .count()
    }
}

/// notify's watcher, handing events to the subscribers in `routes`.
fn new_watcher(routes: &Arc<Mutex<Routes>>) -> Result<RecommendedWatcher, WatchError> {
    let routes = Arc::clone(routes);
    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                // A failed read of the kernel's queue or a recursive watch that could not
                // follow a new directory: events may be lost, so everyone concerned looks.
                tracing::warn!(error = %e, "file watch error; rescanning what it concerns");
                let mut rescan =
                    notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
                rescan.paths = e.paths;
                rescan
            }
        };
        let sinks = {
            let mut routes = lock(&routes);
            routes.mark_lost(&event);
            routes.sinks_for(&event)
        };
        for sink in sinks {
            sink(&event);
        }
    })
    .map_err(WatchError::from_instance)
}

/// Makes notify's watches for `dir` match what its subscribers need, and those of the
/// directories under it whose cover changed.
fn reconcile(
    watcher: &mut RecommendedWatcher,
    routes: &Mutex<Routes>,
    dir: &Path,
) -> Result<(), WatchError> {
    let (current, wanted) = {
        let routes = lock(routes);
        let Some(entry) = routes.dirs.get(dir) else {
            return Ok(());
        };
        let wanted = if routes.covered(dir) {
            None
        } else {
            entry.mode()
        };
        (entry.watched, wanted)
    };
    if current == wanted {
        return Ok(());
    }
    let was_recursive = current == Some(RecursiveMode::Recursive);
    if current.is_some() {
        // notify merges a watch asked again into the one it holds, and removing a
        // recursive watch removes everything under it: start from none.
        let _ = watcher.unwatch(dir);
        if let Some(entry) = lock(routes).dirs.get_mut(dir) {
            entry.watched = None;
        }
    }
    if let Some(mode) = wanted {
        watcher
            .watch(dir, mode)
            .map_err(|source| WatchError::from_watch(dir, source))?;
        if let Some(entry) = lock(routes).dirs.get_mut(dir) {
            entry.watched = Some(mode);
            entry.lost = false;
        }
    }
    let is_recursive = wanted == Some(RecursiveMode::Recursive);
    if was_recursive || is_recursive {
        // The directories below were covered, or are now: their own watches change.
        let below: Vec<PathBuf> = {
            let mut routes = lock(routes);
            routes
                .dirs
                .iter_mut()
                .filter(|(path, _)| path.starts_with(dir) && path.as_path() != dir)
                .map(|(path, entry)| {
                    if is_recursive {
                        // notify folded their watches into the recursive one.
                        entry.watched = None;
                    }
                    path.clone()
                })
                .collect()
        };
        if was_recursive && !is_recursive {
            // Removing the recursive watch took theirs with it.
            let mut routes = lock(routes);
            for path in &below {
                if let Some(entry) = routes.dirs.get_mut(path) {
                    entry.watched = None;
                }
            }
        }
        for path in below {
            if let Err(e) = reconcile(watcher, routes, &path) {
                tracing::warn!(dir = %path.display(), error = %e, "cannot watch a directory on its own once the recursive watch above it went");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// A sink that forwards the paths of every event it is handed.
    fn forward() -> (Sink, mpsc::Receiver<Vec<PathBuf>>) {
        let (sender, receiver) = mpsc::channel();
        let sink: Sink = Arc::new(move |event: &notify::Event| {
            let _ = sender.send(event.paths.clone());
        });
        (sink, receiver)
    }

    /// Whether `path` shows up among the events received within a few seconds.
    fn sees(receiver: &mpsc::Receiver<Vec<PathBuf>>, path: &Path) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Ok(paths) =
            receiver.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if paths.iter().any(|p| p == path) {
                return true;
            }
        }
        false
    }

    #[test]
    fn events_go_to_the_subscribers_of_their_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let hub = WatchHub::default();
        let (a, a_events) = forward();
        let (b, b_events) = forward();
        let (all, all_events) = forward();
        let names = |n: &str| vec![OsString::from(n)];
        let _a = hub
            .subscribe(dir.path(), RecursiveMode::NonRecursive, names("a"), a)
            .unwrap();
        let _b = hub
            .subscribe(dir.path(), RecursiveMode::NonRecursive, names("b"), b)
            .unwrap();
        let _all = hub
            .subscribe(dir.path(), RecursiveMode::NonRecursive, Vec::new(), all)
            .unwrap();
        assert_eq!(hub.watched_dirs(), 1);
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        assert!(sees(&a_events, &dir.path().join("a")));
        assert!(sees(&all_events, &dir.path().join("a")));
        assert!(
            b_events.try_iter().all(|paths| paths.is_empty()),
            "b was handed a's events"
        );
    }

    #[test]
    fn a_recursive_watch_covers_the_directories_under_it_until_it_goes() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let hub = WatchHub::default();
        let (top, _top_events) = forward();
        let (below, below_events) = forward();
        let recursive = hub
            .subscribe(root.path(), RecursiveMode::Recursive, Vec::new(), top)
            .unwrap();
        let _below = hub
            .subscribe(&sub, RecursiveMode::NonRecursive, Vec::new(), below)
            .unwrap();
        // Covered: no watch of its own.
        assert_eq!(hub.watched_dirs(), 1);
        std::fs::write(sub.join("one"), b"x").unwrap();
        assert!(sees(&below_events, &sub.join("one")));
        // The recursive watch goes: the directory below gets its own, and still hears.
        drop(recursive);
        assert_eq!(hub.watched_dirs(), 1);
        std::fs::write(sub.join("two"), b"x").unwrap();
        assert!(sees(&below_events, &sub.join("two")));
    }
}
