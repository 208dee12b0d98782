//! The sbatch script of a sweep: one job array, task `i` training the `i`-th run hash.

use std::fmt::Write;
use std::path::Path;

use super::Options;

/// What a script is made from.
pub struct Script<'a> {
    pub sweep: &'a str,
    pub sweep_file: &'a Path,
    /// The dcgan binary the tasks run (the one submitting, so it must be on a shared path).
    pub exe: &'a Path,
    /// Absolute: tasks may start anywhere.
    pub runs_dir: &'a Path,
    /// Where tasks start, so relative paths mean what they meant at submission.
    pub workdir: &'a Path,
    /// Folder for the tasks' output files.
    pub logs: &'a Path,
    pub hashes: &'a [String],
    pub total_configs: usize,
    pub options: &'a Options,
}

/// The job name every array of a sweep is submitted under; `dcgan status` asks squeue for it.
pub fn job_name(sweep: &str) -> String {
    format!("dcgan-{sweep}")
}

impl Script<'_> {
    pub fn render(&self) -> String {
        let o = self.options;
        let n = self.hashes.len();
        let mut s = String::from("#!/bin/bash\n");
        let _ = writeln!(
            s,
            "# Written by `dcgan sweep --executor slurm` for sweep {} ({}): {n} of its {} \
             configs,\n# the ones without a completed run. Array task i trains the i-th \
             hash below;\n# the configs are recorded in {}/.sweeps/{}/.",
            self.sweep,
            self.sweep_file.display(),
            self.total_configs,
            self.runs_dir.display(),
            self.sweep
        );
        let limit = o.array_parallelism.map(|k| format!("%{k}")).unwrap_or_default();
        let mut directives = vec![
            format!("--job-name={}", job_name(self.sweep)),
            format!("--array=0-{}{limit}", n.saturating_sub(1)),
            "--ntasks=1".to_string(),
            format!("--chdir={}", self.workdir.display()),
            format!("--output={}/%A_%a.log", self.logs.display()),
        ];
        directives.extend(o.partition.as_ref().map(|p| format!("--partition={p}")));
        directives.extend(o.time.as_ref().map(|t| format!("--time={t}")));
        directives.extend(o.gpus_per_task.map(|g| format!("--gpus-per-task={g}")));
        directives.extend(o.sbatch_args.iter().cloned());
        for directive in directives {
            let _ = writeln!(s, "#SBATCH {directive}");
        }
        s.push_str("set -euo pipefail\nhashes=(\n");
        for hash in self.hashes {
            let _ = writeln!(s, "  {hash}");
        }
        s.push_str(")\n");
        // One thread per CPU Slurm gave the task: without cgroups, every core is visible.
        let threads = match o.threads {
            Some(t) => t.to_string(),
            None => "\"${SLURM_CPUS_PER_TASK:-1}\"".to_string(),
        };
        // exec: Slurm's SIGTERM at the time limit reaches dcgan, which checkpoints.
        let _ = writeln!(
            s,
            "exec {} run --hash \"${{hashes[$SLURM_ARRAY_TASK_ID]}}\" --runs-dir {} \
             --threads {threads}",
            quote(&self.exe.display().to_string()),
            quote(&self.runs_dir.display().to_string())
        );
        s
    }
}

/// Quotes a word for bash: inside single quotes nothing is special but the quote itself.
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_arrays_over_the_hashes_with_the_options_given() {
        let options = Options {
            partition: Some("gpu".into()),
            time: Some("1:00:00".into()),
            gpus_per_task: Some(1),
            array_parallelism: Some(2),
            sbatch_args: vec!["--mem=8G".into()],
            ..Options::default()
        };
        let hashes = vec!["aa".repeat(32), "bb".repeat(32), "cc".repeat(32)];
        let script = Script {
            sweep: "demo",
            sweep_file: Path::new("experiments/demo.yaml"),
            exe: Path::new("/opt/it's here/dcgan"),
            runs_dir: Path::new("/shared/runs"),
            workdir: Path::new("/home/me/project"),
            logs: Path::new("/shared/runs/.sweeps/demo/slurm"),
            hashes: &hashes,
            total_configs: 5,
            options: &options,
        }
        .render();
        for line in [
            "#SBATCH --job-name=dcgan-demo",
            "#SBATCH --array=0-2%2",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=1:00:00",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --mem=8G",
            "#SBATCH --chdir=/home/me/project",
            "#SBATCH --output=/shared/runs/.sweeps/demo/slurm/%A_%a.log",
            &format!("  {}", hashes[2]),
        ] {
            assert!(script.lines().any(|l| l == line), "no line {line:?} in\n{script}");
        }
        let exec = script.lines().last().unwrap();
        assert!(exec.starts_with(r"exec '/opt/it'\''s here/dcgan' run --hash"), "{exec}");
        assert!(exec.ends_with("--runs-dir /shared/runs --threads \"${SLURM_CPUS_PER_TASK:-1}\""));
    }

    #[test]
    fn quoting_keeps_plain_words_plain() {
        assert_eq!(quote("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }
}
