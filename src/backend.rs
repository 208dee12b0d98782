//! The one place that turns a backend name into a device.
//!
//! Backends are cargo features; names are validated here, before any run starts, so a sweep
//! asking for a backend this binary lacks, or a GPU this machine lacks, fails at once.

use std::fmt;

use burn::tensor::Device;

/// Where tensors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (`flex` feature, on by default).
    Flex,
    /// LibTorch on the CPU through burn-tch (`tch` feature).
    TchCpu,
    /// LibTorch on CUDA GPU `N` through burn-tch (`tch` feature).
    TchCuda(usize),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BackendError {
    #[error("unknown backend `{name}`; known backends: {known}")]
    Unknown { name: String, known: String },
    #[error(
        "backend `{name}` is not compiled into this binary; rebuild with `--features {feature}`"
    )]
    NotCompiled { name: String, feature: &'static str },
    #[error("backend `{name}` needs CUDA GPU {index}, but LibTorch sees {visible} CUDA device(s)")]
    NoGpu { name: String, index: usize, visible: usize },
}

/// Every backend name the harness knows, compiled in or not.
pub const KNOWN: &[&str] = &["flex", "tch-cpu", "tch-cuda", "tch-cuda:N"];

impl Backend {
    /// Parses a backend name as written in configs and on the command line, and checks that
    /// this binary has it compiled in.
    pub fn parse(name: &str) -> Result<Self, BackendError> {
        let backend = Self::parse_name(name)?;
        let feature = backend.feature();
        let compiled = match feature {
            "flex" => cfg!(feature = "flex"),
            _ => cfg!(feature = "tch"),
        };
        if compiled {
            Ok(backend)
        } else {
            Err(BackendError::NotCompiled { name: name.into(), feature })
        }
    }

    /// Parses a backend name without asking whether this binary can run it (reports name
    /// backends of runs made elsewhere).
    pub fn parse_name(name: &str) -> Result<Self, BackendError> {
        Ok(match name {
            "flex" => Backend::Flex,
            "tch-cpu" => Backend::TchCpu,
            "tch-cuda" => Backend::TchCuda(0),
            _ => match name.strip_prefix("tch-cuda:").map(str::parse) {
                Some(Ok(index)) => Backend::TchCuda(index),
                _ => {
                    let known = KNOWN.join(", ");
                    return Err(BackendError::Unknown { name: name.into(), known });
                }
            },
        })
    }

    /// Parses the name and checks the hardware it needs is there (a visible CUDA GPU).
    pub fn available(name: &str) -> Result<Self, BackendError> {
        let backend = Self::parse(name)?;
        if let Backend::TchCuda(index) = backend {
            let visible = cuda_device_count();
            if index >= visible {
                return Err(BackendError::NoGpu { name: name.into(), index, visible });
            }
        }
        Ok(backend)
    }

    fn feature(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::TchCpu | Backend::TchCuda(_) => "tch",
        }
    }

    /// The device without autodiff: for inference and synthetic data.
    pub fn device(self) -> Device {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Device::flex(),
            // Burn marks its LibTorch devices deprecated in favour of its CubeCL backends;
            // LibTorch is the GPU route this harness is built on, so the warning is noise here.
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Backend::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Backend::TchCuda(index) => Device::libtorch_cuda(index),
            #[allow(unreachable_patterns)]
            _ => unreachable!("parse refuses backends that are not compiled in"),
        }
    }

    /// The device to train on, with autodiff.
    pub fn training_device(self) -> Device {
        self.device().autodiff()
    }

    /// Threads the backend's CPU kernels use, where the harness controls it.
    pub fn cpu_threads(self) -> Option<usize> {
        match self {
            #[cfg(feature = "tch")]
            Backend::TchCpu => Some(tch::get_num_threads() as usize),
            Backend::Flex => Some(rayon::current_num_threads()),
            _ => None,
        }
    }

    /// Sets the threads the backend's CPU kernels use; call before any tensor work.
    pub fn set_cpu_threads(self, threads: usize) -> anyhow::Result<()> {
        anyhow::ensure!(threads > 0, "needs at least one thread");
        match self {
            #[cfg(feature = "tch")]
            Backend::TchCpu => tch::set_num_threads(threads as i32),
            Backend::Flex => rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(feature = "tch")]
fn cuda_device_count() -> usize {
    usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
}

#[cfg(not(feature = "tch"))]
fn cuda_device_count() -> usize {
    0
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Flex => f.write_str("flex"),
            Backend::TchCpu => f.write_str("tch-cpu"),
            Backend::TchCuda(0) => f.write_str("tch-cuda"),
            Backend::TchCuda(index) => write!(f, "tch-cuda:{index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = Backend::parse("cuda9").unwrap_err().to_string();
        assert!(err.contains("cuda9") && err.contains("flex"), "{err}");
        assert!(err.contains("tch-cuda:N"), "{err}");
        assert_eq!(Backend::parse("flex"), Ok(Backend::Flex));
        assert!(matches!(Backend::parse("tch-cuda:x"), Err(BackendError::Unknown { .. })));
    }

    #[test]
    fn tch_names_parse_or_name_the_feature() {
        for (name, backend) in [
            ("tch-cpu", Backend::TchCpu),
            ("tch-cuda", Backend::TchCuda(0)),
            ("tch-cuda:3", Backend::TchCuda(3)),
        ] {
            match Backend::parse(name) {
                Ok(parsed) => {
                    assert!(cfg!(feature = "tch"));
                    assert_eq!(parsed, backend);
                    assert_eq!(parsed.to_string(), name.replace("tch-cuda:0", "tch-cuda"));
                }
                Err(e) => {
                    assert!(!cfg!(feature = "tch"));
                    assert!(e.to_string().contains("--features tch"), "{e}");
                }
            }
        }
    }

    #[test]
    fn a_gpu_that_is_not_there_is_refused() {
        // No machine has 1000 GPUs, with or without `tch` compiled in.
        let err = Backend::available("tch-cuda:999").unwrap_err().to_string();
        assert!(err.contains("tch-cuda:999"), "{err}");
    }
}
