//! Content hashes of resolved configs: the name of every run directory.
//!
//! The hash is sha256 over a canonical text of the fully resolved config plus the dataset's
//! content fingerprint. Because the config is typed before it is hashed, defaults are filled
//! and `2e-4`, `0.0002` and `2.0e-4` are the same `f64`; keys are sorted here explicitly
//! (rather than trusting a map type) so no dependency's feature flags can change the order.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::RunConfig;

/// Hex digits of the hash used as the run directory's name.
pub const SHORT_LEN: usize = 16;

/// Bumped whenever the canonical text changes meaning, so old and new hashes never collide.
/// v2: the backend is seeded again before every step (so runs can resume bit-identically),
/// which changes every run's dropout masks and so what a config trains to.
const CANONICAL_VERSION: &str = "dcgan-harness/config-v2";

/// The canonical text of a config: sorted keys, no whitespace, fields that do not change
/// what is trained (where the dataset files live, how samples are scored) left out.
pub fn canonical_text(config: &RunConfig) -> String {
    let mut value = serde_json::to_value(config).expect("a RunConfig always serialises to JSON");
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        for key in ["path", "images", "labels", "strict"] {
            data.remove(key);
        }
        // Only Fashion-MNIST has splits; elsewhere `split` changes nothing that is trained.
        if data.get("dataset").and_then(Value::as_str) != Some("fashion-mnist") {
            data.remove("split");
        }
    }
    // Evaluation settings change how a run is scored, and checkpoints when it is saved, not
    // what is trained.
    if let Some(config) = value.as_object_mut() {
        config.remove("eval");
        config.remove("checkpoint");
    }
    let mut out = String::new();
    write_sorted(&value, &mut out);
    out
}

/// Earlier canonical forms, whose runs are still recognised (listed, reported, cached) though
/// this version would train their configs differently.
const OLDER_VERSIONS: [&str; 1] = ["dcgan-harness/config-v1"];

/// Which canonical form a stored run's hash was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Current,
    Older(&'static str),
}

/// The full sha256 (64 hex digits) of a config trained on a dataset with this fingerprint.
pub fn run_hash(config: &RunConfig, dataset_fingerprint: &str) -> String {
    hash_with(CANONICAL_VERSION, config, dataset_fingerprint)
}

/// The form under which `hash` is the hash of this config and data, or `None` when it is
/// under none: the config was edited after the run.
pub fn scheme_of(config: &RunConfig, dataset_fingerprint: &str, hash: &str) -> Option<Scheme> {
    if run_hash(config, dataset_fingerprint) == hash {
        return Some(Scheme::Current);
    }
    let older = OLDER_VERSIONS.iter().find(|v| hash_with(v, config, dataset_fingerprint) == hash);
    older.map(|v| Scheme::Older(v))
}

fn hash_with(version: &str, config: &RunConfig, dataset_fingerprint: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(version.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_text(config).as_bytes());
    hasher.update(b"\ndataset:");
    hasher.update(dataset_fingerprint.as_bytes());
    format!("{:x}", hasher.finalize())
}

/// The run directory's name for a full hash.
pub fn short(hash: &str) -> &str {
    &hash[..SHORT_LEN.min(hash.len())]
}

fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_sorted(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> RunConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn key_order_and_number_spelling_do_not_change_the_hash() {
        let a = parse("train: {lr_g: 2e-4, seed: 3}\nmodel: {width: 8}");
        let b = parse("model: {width: 8}\ntrain: {seed: 3, lr_g: 0.0002}");
        let c = parse("model:\n  width: 8\ntrain:\n  seed: 3\n  lr_g: 2.0e-4\n");
        assert_eq!(run_hash(&a, "fp"), run_hash(&b, "fp"));
        assert_eq!(run_hash(&a, "fp"), run_hash(&c, "fp"));
    }

    #[test]
    fn spelling_out_a_default_does_not_change_the_hash() {
        assert_eq!(run_hash(&parse("{}"), "fp"), run_hash(&parse("train: {lr_d: 5e-5}"), "fp"));
    }

    #[test]
    fn data_location_is_not_hashed_but_its_content_is() {
        let here = parse("data: {path: /a}");
        let there = parse("data: {path: /b/c}");
        assert_eq!(run_hash(&here, "fp"), run_hash(&there, "fp"));
        assert_ne!(run_hash(&here, "fp"), run_hash(&here, "other"));
    }

    #[test]
    fn split_counts_for_fashion_mnist_only_and_strict_not_at_all() {
        let split = |dataset: &str, split: &str| {
            let yaml = format!("data: {{dataset: {dataset}, path: /a, split: {split}}}");
            run_hash(&parse(&yaml), "fp")
        };
        assert_ne!(split("fashion-mnist", "test"), split("fashion-mnist", "train"));
        assert_eq!(split("folder", "test"), split("folder", "train"));
        let strict = parse("data: {dataset: folder, path: /a, strict: true}");
        assert_eq!(run_hash(&strict, "fp"), split("folder", "train"));
        let images = parse("data: {dataset: idx, images: /x/a.gz, labels: /x/b.gz}");
        let moved = parse("data: {dataset: idx, images: /y/a, labels: /y/b}");
        assert_eq!(run_hash(&images, "fp"), run_hash(&moved, "fp"));
    }

    #[test]
    fn evaluation_settings_are_not_hashed() {
        let plain = run_hash(&parse("{}"), "fp");
        assert_eq!(plain, run_hash(&parse("eval: {n: 5000, every: 100, enabled: false}"), "fp"));
        assert_eq!(plain, run_hash(&parse("checkpoint: {every: 7}"), "fp"));
    }

    #[test]
    fn every_training_value_changes_the_hash() {
        let base = run_hash(&RunConfig::default(), "fp");
        let changes = [
            "train: {lr_g: 1e-4}",
            "train: {seed: 1}",
            "train: {steps: 7}",
            "model: {width: 32}",
            "model: {dropout: 0.5}",
            "balance: {strategy: skip}",
            "balance: {low: 0.55}",
            "balance: {signal: loss}",
            "data: {split: test}",
            "data: {limit: 1000}",
            "logging: {sample_seed: 1}",
        ];
        for change in changes {
            assert_ne!(run_hash(&parse(change), "fp"), base, "{change} kept the hash");
        }
    }

    #[test]
    fn a_hash_is_recognised_under_its_own_scheme_only() {
        let config = parse("model: {width: 8}");
        let current = run_hash(&config, "fp");
        assert_eq!(scheme_of(&config, "fp", &current), Some(Scheme::Current));
        let v1 = hash_with("dcgan-harness/config-v1", &config, "fp");
        assert_eq!(scheme_of(&config, "fp", &v1), Some(Scheme::Older("dcgan-harness/config-v1")));
        let edited = parse("model: {width: 9}");
        assert_eq!(scheme_of(&edited, "fp", &current), None);
    }

    #[test]
    fn canonical_text_is_sorted_and_compact() {
        let text = canonical_text(&RunConfig::default());
        assert!(text.starts_with("{\"balance\":{"), "{text}");
        assert!(!text.contains(' '));
        assert!(text.find("\"model\":") < text.find("\"train\":"));
    }
}
