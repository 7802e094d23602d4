//! Host programs showing grove; see the `[[example]]` targets.
