//! The message bus on real libraries (tests/fixtures/chatter): delivery from the next
//! frame in publication order under every module system, nothing lost or repeated across
//! 50 reloads of the subscriber, typed payloads that never misread, backpressure, the
//! host's end, and bad input reported by module and topic.

use grove_runtime::{Engine, EngineEvent, Error, Strategy};
use serde_json::json;

use crate::support::{chatter, scratch_dir, unpaced_engine};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ChatterState {
    sent: u64,
    rejected: u64,
    received: Vec<(u64, u64, u64, String)>,
    errors: Vec<String>,
    bus_errors: Vec<String>,
}

fn state(engine: &mut Engine, name: &str) -> ChatterState {
    engine.module_state(name).unwrap()
}

/// The consumer's figures on the bus.
fn consumer_stats(stats: &grove_runtime::Stats) -> &grove_runtime::ModuleBusStats {
    stats
        .bus
        .modules
        .iter()
        .find(|m| m.module == "consumer")
        .unwrap()
}

/// The numbers of the ticks the consumer received, in order.
fn received_seqs(engine: &mut Engine) -> Vec<u64> {
    state(engine, "consumer")
        .received
        .iter()
        .map(|r| r.0)
        .collect()
}

/// Loads a consumer configured with `consumer` (from a private copy, so it can be
/// replaced) and a producer of `per_frame` ticks a frame on `count:tick`, after one frame
/// in which the consumer subscribes.
fn pair(engine: &mut Engine, per_frame: u32, consumer: serde_json::Value) -> std::path::PathBuf {
    let dir = scratch_dir();
    let consumer_lib = dir.join("libconsumer.so");
    std::fs::copy(chatter("consumer"), &consumer_lib).unwrap();
    engine.load_module(&consumer_lib).unwrap();
    engine.configure("consumer", &consumer).unwrap();
    engine.load_module(chatter("v1")).unwrap();
    // The consumer subscribes in its first `process`, as its config changed.
    engine.run_frames(1);
    engine
        .configure(
            "producer",
            &json!({"topic": "count:tick", "per_frame": per_frame}),
        )
        .unwrap();
    consumer_lib
}

fn subscribe_all() -> serde_json::Value {
    json!({"subscribe": ["count:*"]})
}

#[test]
fn messages_arrive_the_next_frame_in_order_under_every_system() {
    for strategy in [Strategy::Sequential, Strategy::Threaded, Strategy::Pool] {
        let mut engine = Engine::builder()
            .target_fps(0.0)
            .watch_files(false)
            .strategy(strategy)
            .build()
            .unwrap();
        pair(&mut engine, 3, subscribe_all());
        engine.run_frames(20);
        let consumer = state(&mut engine, "consumer");
        let producer = state(&mut engine, "producer");
        assert_eq!(producer.sent, 60, "{strategy:?}");
        // Frame 19's ticks are still in flight.
        assert_eq!(consumer.received.len(), 57, "{strategy:?}");
        for (i, (seq, published, received, _)) in consumer.received.iter().enumerate() {
            assert_eq!(*seq, i as u64, "in publication order ({strategy:?})");
            assert_eq!(
                *received,
                published + 1,
                "from the next frame ({strategy:?})"
            );
        }
        let stats = engine.stats();
        let topic = stats
            .bus
            .topics
            .iter()
            .find(|t| t.topic == "count:tick")
            .unwrap();
        assert_eq!((topic.published, topic.routed, topic.dropped), (60, 60, 0));
        let consumer_stats = consumer_stats(&stats);
        assert_eq!(consumer_stats.delivered, 57);
        assert_eq!(consumer_stats.queued, 3);
        assert_eq!(consumer_stats.subscriptions, ["count:*"]);
    }
}

#[test]
fn every_message_arrives_exactly_once_across_fifty_reloads_of_the_subscriber() {
    let mut engine = unpaced_engine();
    pair(&mut engine, 5, subscribe_all());
    for _ in 0..50 {
        engine.run_frames(2);
        // The new version's `init` subscribes again: nothing changes, and the queue
        // waiting for it is handed over. Messaging leaves nothing behind that would keep
        // the old library mapped (a thread-local with a destructor, say).
        let reloaded = engine.reload("consumer").unwrap();
        assert_eq!(reloaded.old_library, grove_runtime::Unmapped::Yes);
    }
    engine.run_frames(3);
    let consumer = state(&mut engine, "consumer");
    let producer = state(&mut engine, "producer");
    assert_eq!(producer.sent, 5 * 103);
    let seqs: Vec<u64> = consumer.received.iter().map(|r| r.0).collect();
    let expected: Vec<u64> = (0..5 * 102).collect();
    assert_eq!(seqs, expected, "every message once, in order");
    assert_eq!(engine.generation("consumer").unwrap(), 51);
}

#[test]
fn a_faulted_subscriber_keeps_its_messages_for_the_next_version() {
    let mut engine = unpaced_engine();
    let consumer_lib = pair(
        &mut engine,
        2,
        json!({"subscribe": ["count:*"], "panic_at": 4}),
    );
    engine.run_frames(10); // panics in frame 4, then is skipped
    std::fs::copy(chatter("consumer"), &consumer_lib).unwrap();
    // A faulted module takes a config (the next version is handed it): no more panics.
    engine
        .configure(
            "consumer",
            &json!({"subscribe": ["count:*"], "panic_at": null}),
        )
        .unwrap();
    engine.reload("consumer").unwrap();
    engine.configure("consumer", &subscribe_all()).unwrap();
    engine.run_frames(1);
    let seqs: Vec<u64> = received_seqs(&mut engine);
    // The ten frames published 20 ticks, the last frame's arriving after the reload; those
    // handed to the call that panicked are handed to the new version again.
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
}

#[test]
fn a_payload_of_another_shape_is_an_error_naming_both_types_never_a_wrong_value() {
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    let consumer_lib = pair(&mut engine, 1, subscribe_all());
    engine.run_frames(3);
    std::fs::copy(chatter("consumer,changed"), &consumer_lib).unwrap();
    engine.reload("consumer").unwrap();
    engine.run_frames(3);
    let consumer = state(&mut engine, "consumer");
    assert_eq!(
        consumer.received.len(),
        2,
        "only the ticks read before the change"
    );
    assert_eq!(consumer.errors.len(), 3);
    let error = &consumer.errors[0];
    for part in ["count:tick", "producer", "chatter::Tick", "differ in shape"] {
        assert!(error.contains(part), "{error}");
    }
    let stats = engine.stats();
    let consumer_stats = consumer_stats(&stats);
    assert_eq!(consumer_stats.decode_errors, 3);
    assert!(events.try_iter().any(|e| matches!(
        &e,
        EngineEvent::MessageProblem { module, topic, problem }
            if module == "consumer" && topic == "count:tick" && problem.contains("chatter::Tick")
    )));
}

#[test]
fn full_queues_drop_the_oldest_keep_the_latest_or_reject() {
    // Drop oldest: 10 a frame into a queue of 4 keeps the newest 4.
    let mut engine = unpaced_engine();
    pair(
        &mut engine,
        10,
        json!({"subscribe": ["count:*"], "capacity": 4}),
    );
    engine.run_frames(3);
    let seqs: Vec<u64> = received_seqs(&mut engine);
    assert_eq!(seqs, [6, 7, 8, 9, 16, 17, 18, 19]);
    let stats = engine.stats();
    let consumer = consumer_stats(&stats);
    assert_eq!(consumer.dropped, 18);

    // Keep latest: 10 a frame over 3 topics keeps the last of each.
    let mut engine = unpaced_engine();
    pair(
        &mut engine,
        0,
        json!({"subscribe": ["count:**"], "backpressure": "keep_latest"}),
    );
    engine
        .configure(
            "producer",
            &json!({"topic": "count", "per_frame": 10, "spread": 3}),
        )
        .unwrap();
    engine.run_frames(2);
    let received = state(&mut engine, "consumer").received;
    let got: Vec<(u64, &str)> = received.iter().map(|r| (r.0, r.3.as_str())).collect();
    assert_eq!(got, [(9, "0"), (7, "1"), (8, "2")]);

    // Reject: the publisher hears of the full queue.
    let mut engine = unpaced_engine();
    pair(
        &mut engine,
        10,
        json!({"subscribe": ["count:*"], "backpressure": "reject", "capacity": 4}),
    );
    engine.run_frames(3);
    let producer = state(&mut engine, "producer");
    assert_eq!((producer.sent, producer.rejected), (12, 18));
    let seqs: Vec<u64> = received_seqs(&mut engine);
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
}

#[test]
fn the_host_publishes_and_drains_its_own_inbox() {
    let mut engine = unpaced_engine();
    pair(&mut engine, 2, subscribe_all());
    let inbox = engine.subscribe_topic("count:**").unwrap();
    engine
        .publish(
            "count:from_host",
            &chatter::Tick {
                seq: 1000,
                frame: 0,
                from: *b"the host........",
            },
        )
        .unwrap();
    engine.run_frames(2);
    let consumer = state(&mut engine, "consumer");
    assert_eq!(
        consumer.received[0].0, 1000,
        "host publications arrive first"
    );
    assert_eq!(consumer.received[0].3, "from_host");
    // The host's inbox holds both frames' ticks, after each frame.
    let messages = inbox.drain();
    assert_eq!(
        messages.len(),
        1 + 4,
        "its own publication, and the producer's"
    );
    let ticks: Vec<chatter::Tick> = messages.iter().map(|m| m.decode().unwrap()).collect();
    assert_eq!(ticks[0].seq, 1000);
    assert_eq!(messages[1].publisher(), "producer");
    assert!(inbox.is_empty());

    // Decoding into another type is an error, not a value.
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Other {
        seq: u64,
    }
    engine.run_frames(1);
    let error = inbox.drain()[0].decode::<Other>().unwrap_err();
    assert!(error.to_string().contains("differ in shape"), "{error}");

    // Bad input from the host is refused at once.
    assert!(matches!(
        engine.publish("count:*", &1u32),
        Err(Error::Bus { .. })
    ));
    assert!(engine.subscribe_topic("a::b").is_err());
}

#[test]
fn bad_topics_are_reported_by_module_and_topic_and_the_bus_carries_on() {
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    pair(
        &mut engine,
        1,
        json!({"subscribe": ["count:*", "bad::pattern"]}),
    );
    engine
        .configure(
            "producer",
            &json!({"topic": "count:has space", "per_frame": 1}),
        )
        .unwrap();
    engine.run_frames(2);
    let problems: Vec<(String, String, String)> = events
        .try_iter()
        .filter_map(|e| match e {
            EngineEvent::MessageProblem {
                module,
                topic,
                problem,
            } => Some((module, topic, problem)),
            _ => None,
        })
        .collect();
    assert!(
        problems
            .iter()
            .any(|(m, t, p)| m == "consumer" && t == "bad::pattern" && p.contains("empty segment")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|(m, t, p)| m == "producer" && t == "count:has space" && p.contains("whitespace")),
        "{problems:?}"
    );
    let consumer = state(&mut engine, "consumer");
    assert_eq!(consumer.bus_errors.len(), 1, "{:?}", consumer.bus_errors);
    // The good subscription works.
    engine
        .configure("producer", &json!({"topic": "count:ok", "per_frame": 1}))
        .unwrap();
    engine.run_frames(2);
    assert_eq!(state(&mut engine, "consumer").received.len(), 1);
}

#[test]
fn static_and_loaded_modules_talk_alike() {
    // A producer linked into this test binary, a loaded consumer.
    let mut engine = unpaced_engine();
    let consumer_lib = scratch_dir().join("libconsumer.so");
    std::fs::copy(chatter("consumer"), &consumer_lib).unwrap();
    engine.load_module(&consumer_lib).unwrap();
    engine.configure("consumer", &subscribe_all()).unwrap();
    engine
        .add_static_configured("producer", chatter::Chatter::default())
        .unwrap();
    engine
        .configure("producer", &json!({"topic": "count:tick", "per_frame": 2}))
        .unwrap();
    engine.run_frames(4);
    let received = state(&mut engine, "consumer").received;
    let seqs: Vec<u64> = received.iter().map(|r| r.0).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);
    assert!(received.iter().all(|r| r.2 == r.1 + 1));

    // And the other way round: a loaded producer, a static consumer.
    let mut engine = unpaced_engine();
    engine.load_module(chatter("v1")).unwrap();
    engine
        .configure("producer", &json!({"topic": "count:tick", "per_frame": 2}))
        .unwrap();
    engine
        .add_static_configured("consumer", chatter::Chatter::default())
        .unwrap();
    engine.configure("consumer", &subscribe_all()).unwrap();
    engine.run_frames(4);
    let health = engine.health();
    let messages = &health.module("consumer").unwrap().messages;
    assert_eq!(
        (messages.delivered, messages.decode_errors, messages.queued),
        (6, 0, 2)
    );
}

#[test]
fn a_reload_keeps_the_subscriptions_unless_the_new_init_makes_others() {
    let mut engine = unpaced_engine();
    pair(&mut engine, 1, subscribe_all());
    engine.run_frames(2);
    let subscriptions = |engine: &Engine| {
        let stats = engine.stats();
        let consumer = consumer_stats(&stats);
        consumer.subscriptions.clone()
    };
    // Its `init` subscribes to what its config says: the same, and nothing changes.
    engine.reload("consumer").unwrap();
    assert_eq!(subscriptions(&engine), ["count:*"]);
    // A config that subscribes elsewhere: the new version's `init` makes the whole set.
    engine
        .configure("consumer", &json!({"subscribe": ["other:*"]}))
        .unwrap();
    engine.reload("consumer").unwrap();
    assert_eq!(subscriptions(&engine), ["other:*"]);
    let before = state(&mut engine, "consumer").received.len();
    engine.run_frames(3);
    assert_eq!(
        state(&mut engine, "consumer").received.len(),
        before + 1,
        "only the tick already queued"
    );
    // An `init` that subscribes to nothing keeps the set it had.
    engine
        .configure("consumer", &json!({"subscribe": []}))
        .unwrap();
    engine.reload("consumer").unwrap();
    assert_eq!(subscriptions(&engine), ["other:*"]);
}

#[test]
fn a_payload_that_cannot_be_encoded_is_an_error_and_an_event() {
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    pair(&mut engine, 1, subscribe_all());
    engine
        .configure(
            "producer",
            &json!({"topic": "count:tick", "per_frame": 1, "unencodable": true}),
        )
        .unwrap();
    engine.run_frames(3);
    let producer = state(&mut engine, "producer");
    assert_eq!(producer.bus_errors.len(), 3);
    assert!(
        producer.bus_errors[0].contains("cannot encode the message for `broken`")
            && producer.bus_errors[0].contains("refuses to be encoded"),
        "{:?}",
        producer.bus_errors
    );
    assert!(events.try_iter().any(|e| matches!(
        &e,
        EngineEvent::MessageProblem { module, topic, problem }
            if module == "producer" && topic == "broken" && problem.contains("refuses to be encoded")
    )));
    // The good publications still flow.
    assert_eq!(received_seqs(&mut engine), [0, 1]);
}
