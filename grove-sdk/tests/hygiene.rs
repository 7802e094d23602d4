//! The code `#[grove::module]` generates names everything by absolute path, so a module
//! compiles next to items that shadow the prelude, std, serde and grove's own names, and
//! through a renamed grove with `crate = "..."`.

#![allow(dead_code, non_camel_case_types, missing_debug_implementations)]

// Any of these could be found by a relative path in the generated code.
struct Result;
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct Box;
struct Vec;
struct String;
struct Default;
struct PhantomData;
struct Serialize;
struct Deserialize;
struct Serializer;
struct Deserializer;
struct Module;
struct Context;
struct StateField;
struct Saved;
struct Unsaved;
mod serde {}
mod core {}
mod std {}
mod alloc {}
mod grove {}
mod __private {}
macro_rules! __grove_export {
    ($($t:tt)*) => {
        compile_error!("the generated code must call grove's glue by its absolute path");
    };
}

/// Methods in scope for every type, with names a check could use.
trait Check {
    fn check(&self) {}
    fn check_field(&self) {}
    const NEW: () = ();
}
impl<T: ?Sized> Check for T {}

mod nested {
    pub(crate) struct Position {
        pub(crate) x: f32,
    }
}

/// A field type less visible than the module.
#[derive(::serde::Serialize, ::serde::Deserialize, ::core::default::Default)]
struct Private {
    x: u32,
}

#[::grove::module]
#[derive(::core::default::Default)]
pub struct Shadowed {
    count: u64,
    name: ::std::string::String,
    history: ::std::vec::Vec<u32>,
    maybe: ::std::option::Option<::std::boxed::Box<u8>>,
    private: Private,
    #[serde(skip)]
    scratch: ::std::option::Option<nested::Position>,
}

/// A module less visible than its exports.
#[::grove::module]
#[derive(::core::default::Default)]
struct Hidden {
    count: u64,
}

impl ::grove::Module for Hidden {
    fn process(&mut self, _ctx: &mut ::grove::Context) {}
}

impl ::grove::Module for Shadowed {
    fn process(&mut self, _ctx: &mut ::grove::Context) {
        self.count += 1;
    }
}

mod renamed_by_use {
    use grove as g;

    #[g::module(crate = "g")]
    #[derive(Default)]
    pub struct ThroughUse {
        count: u64,
    }

    impl g::Module for ThroughUse {
        fn process(&mut self, _ctx: &mut g::Context) {
            self.count += 1;
        }
    }
}

extern crate grove as my_grove;

#[my_grove::module(crate = "::my_grove", name = "renamed")]
#[derive(::core::default::Default)]
pub struct ThroughExternCrate {
    count: u64,
}

impl my_grove::Module for ThroughExternCrate {
    fn process(&mut self, _ctx: &mut my_grove::Context) {
        self.count += 1;
    }
}

// What the attribute exports for `ThroughExternCrate`, named as the loader finds them.
unsafe extern "C" {
    #[link_name = "grove_module_header__hygiene__ThroughExternCrate"]
    static RENAMED_HEADER: ::grove::abi::ModuleHeader;
    #[link_name = "grove_create_module__hygiene__ThroughExternCrate"]
    fn renamed_create(
        host: *const ::grove::abi::HostApi,
        out: *mut ::grove::abi::RawInstance,
        error: ::grove::abi::ByteSink<'_>,
    ) -> ::grove::abi::Status;
}

#[test]
fn modules_through_a_renamed_grove_are_exported() {
    // SAFETY: the header is an immutable static of this binary.
    let name = unsafe { RENAMED_HEADER.module_name() };
    assert_eq!(name, "renamed");
    // Links only when the attribute exported `create_module`.
    let _create: ::grove::abi::CreateFn = renamed_create;
}

#[test]
fn modules_next_to_shadowing_items_work() {
    use ::grove::Module as _;

    let mut ctx = ::grove::Context::from_frame(::core::default::Default::default());
    let mut shadowed = <Shadowed as ::core::default::Default>::default();
    shadowed.process(&mut ctx);
    assert_eq!(shadowed.count, 1);

    let mut through_use = <renamed_by_use::ThroughUse as ::core::default::Default>::default();
    through_use.process(&mut ctx);
    let mut through_extern = <ThroughExternCrate as ::core::default::Default>::default();
    through_extern.process(&mut ctx);
    assert_eq!(through_extern.count, 1);
}
