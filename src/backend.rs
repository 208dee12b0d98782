//! The one place that turns a backend name into a device.
//!
//! Backends are cargo features; names are validated here, before any run starts, so a sweep
//! asking for a backend this binary lacks fails at once with the feature to build with.

use std::fmt;

use burn::tensor::Device;

/// Where tensors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (`flex` feature, on by default).
    Flex,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BackendError {
    #[error("unknown backend `{name}`; known backends: {known}")]
    Unknown { name: String, known: String },
    #[error(
        "backend `{name}` is not compiled into this binary; rebuild with `--features {feature}`"
    )]
    NotCompiled { name: String, feature: &'static str },
}

/// Every backend name the harness knows, compiled in or not.
pub const KNOWN: &[&str] = &["flex"];

impl Backend {
    /// Parses a backend name as written in configs and on the command line.
    pub fn parse(name: &str) -> Result<Self, BackendError> {
        match name {
            "flex" if cfg!(feature = "flex") => Ok(Backend::Flex),
            "flex" => Err(BackendError::NotCompiled { name: name.into(), feature: "flex" }),
            _ => Err(BackendError::Unknown { name: name.into(), known: KNOWN.join(", ") }),
        }
    }

    /// The device to train on, with autodiff.
    pub fn training_device(self) -> Device {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Device::flex().autodiff(),
            #[cfg(not(feature = "flex"))]
            Backend::Flex => unreachable!("parse refuses backends that are not compiled in"),
        }
    }

    /// Whether the same config gives bit-identical results twice on this backend.
    pub fn is_deterministic(self) -> bool {
        matches!(self, Backend::Flex)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Flex => "flex",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = Backend::parse("cuda9").unwrap_err().to_string();
        assert!(err.contains("cuda9") && err.contains("flex"), "{err}");
        assert_eq!(Backend::parse("flex"), Ok(Backend::Flex));
    }
}
