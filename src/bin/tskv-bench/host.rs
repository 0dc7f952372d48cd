//! The host manifest recorded with every run: kernel, CPU model, governor, transparent huge
//! pages, core count and the git SHA of the working directory. Every field is optional,
//! because containers and non-x86 machines hide some of them.

use std::fs;
use std::process::Command;

use serde::Serialize;

/// What the machine was, as far as it tells.
#[derive(Debug, Clone, Serialize)]
pub struct HostManifest {
    /// The kernel's host name (`/proc/sys/kernel/hostname`).
    pub hostname: Option<String>,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// The first `model name` of /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// cpu0's cpufreq scaling governor, if cpufreq is exposed.
    pub governor: Option<String>,
    /// The selected transparent-huge-page mode (the bracketed word).
    pub transparent_hugepages: Option<String>,
    /// Processors listed in /proc/cpuinfo.
    pub cores_online: Option<usize>,
    /// Processors this process may run on.
    pub cores_available: Option<usize>,
    /// `git rev-parse HEAD` in the working directory.
    pub git_sha: Option<String>,
}

impl HostManifest {
    /// Reads the manifest of this machine.
    pub fn collect() -> Self {
        let cpuinfo = read_trimmed("/proc/cpuinfo");
        Self {
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            cpu_model: cpuinfo.as_deref().and_then(cpu_model),
            governor: read_trimmed("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            transparent_hugepages: read_trimmed("/sys/kernel/mm/transparent_hugepage/enabled")
                .map(|s| selected_mode(&s)),
            cores_online: cpuinfo
                .as_deref()
                .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
                .filter(|&n| n > 0),
            cores_available: std::thread::available_parallelism().ok().map(usize::from),
            git_sha: git_sha(),
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The CPU model line of /proc/cpuinfo (x86 `model name`, some ARM kernels `Model`).
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        (key == "model name" || key == "Model").then(|| value.trim().to_string())
    })
}

/// `always [madvise] never` → `madvise`; a file without brackets is returned as is.
fn selected_mode(choices: &str) -> String {
    choices
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or_else(|| choices.to_string(), |(mode, _)| mode.to_string())
}

fn git_sha() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let sha = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!sha.is_empty()).then_some(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_thp_and_cpu_model() {
        assert_eq!(selected_mode("always [madvise] never"), "madvise");
        assert_eq!(selected_mode("never"), "never");
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 3.00GHz\nflags\t: x\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Example CPU @ 3.00GHz"));
        assert_eq!(cpu_model("flags: x"), None);
    }

    #[test]
    fn collects_on_this_machine() {
        let host = HostManifest::collect();
        assert!(host.kernel.is_some());
        assert!(host.cores_available.unwrap_or(0) >= 1);
    }
}
