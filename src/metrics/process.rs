//! The `process_*` metrics Prometheus' client libraries export, read from
//! `/proc/self` at each scrape: CPU time, memory, file descriptors, start
//! time. Reading the files is I/O; parsing them is pure and tested.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// The `process_*` metrics, read from `/proc/self` at each scrape (nothing
/// where `/proc` is missing).
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = ProcessStats::read();
        if let Some(v) = p.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(enc.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                p.virtual_memory_bytes,
            ),
            ("process_open_fds", "Number of open file descriptors", p.open_fds),
            ("process_max_fds", "Maximum number of open file descriptors", p.max_fds),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                p.start_time_seconds,
            ),
        ] {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

/// What `/proc` says about this process; `None` where a file or field is missing.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time.
    pub cpu_seconds: Option<f64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    /// `VmRSS`.
    pub resident_memory_bytes: Option<f64>,
    /// `VmSize`.
    pub virtual_memory_bytes: Option<f64>,
    /// Entries of `/proc/self/fd`.
    pub open_fds: Option<f64>,
    /// The soft limit on open files.
    pub max_fds: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc/self/{stat,status,limits,fd,auxv}` and `/proc/stat`.
    pub fn read() -> ProcessStats {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let ticks = std::fs::read("/proc/self/auxv")
            .ok()
            .and_then(|a| clock_ticks(&a))
            .filter(|&t| t > 0)
            .unwrap_or(100) as f64;
        let stat = parse_stat(&read("/proc/self/stat"));
        let status = read("/proc/self/status");
        ProcessStats {
            cpu_seconds: stat.map(|(cpu, _)| cpu as f64 / ticks),
            start_time_seconds: stat
                .zip(boot_time(&read("/proc/stat")))
                .map(|((_, start), boot)| boot as f64 + start as f64 / ticks),
            resident_memory_bytes: status_kb(&status, "VmRSS").map(|kb| kb as f64 * 1024.0),
            virtual_memory_bytes: status_kb(&status, "VmSize").map(|kb| kb as f64 * 1024.0),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64),
            max_fds: max_open_files(&read("/proc/self/limits")).map(|n| n as f64),
        }
    }
}

/// From `/proc/<pid>/stat` (pure): user plus system time, and the start
/// time after boot, both in clock ticks (fields 14, 15 and 22; the command
/// name, field 2, may hold spaces and parentheses).
pub fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(22)?))
}

/// The boot time, seconds since the Unix epoch, from `/proc/stat` (pure).
pub fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A `Key: N kB` line of `/proc/<pid>/status` (pure).
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits` (pure);
/// `None` when unlimited.
pub fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The clock ticks per second (`AT_CLKTCK`) in `/proc/<pid>/auxv` (pure):
/// pairs of native-endian words, type then value.
pub fn clock_ticks(auxv: &[u8]) -> Option<u64> {
    const AT_CLKTCK: usize = 17;
    const W: usize = std::mem::size_of::<usize>();
    auxv.chunks_exact(2 * W).find_map(|pair| {
        let word = |b: &[u8]| usize::from_ne_bytes(b.try_into().expect("W bytes"));
        (word(&pair[..W]) == AT_CLKTCK).then(|| word(&pair[W..]) as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_even_when_the_command_name_holds_spaces_and_parentheses() {
        let stat = "4242 (portico (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 104857600 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(stat), Some((325, 123456)));
        assert_eq!(parse_stat("4242 (portico) S 1"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn parses_boot_time_memory_and_the_open_files_limit() {
        assert_eq!(
            boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(boot_time("cpu 1\n"), None);
        let status = "Name:\tportico\nVmPeak:\t  300000 kB\nVmSize:\t  262144 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(status_kb(status, "VmRSS"), Some(2048));
        assert_eq!(status_kb(status, "VmSize"), Some(262_144));
        assert_eq!(status_kb(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63422                63422                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files("Max open files            unlimited            unlimited            files\n"),
            None
        );
    }

    #[test]
    fn finds_the_clock_ticks_in_the_auxiliary_vector() {
        let words: Vec<usize> = vec![6, 4096, 17, 250, 0, 0];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(clock_ticks(&bytes), Some(250));
        assert_eq!(clock_ticks(&bytes[..2 * std::mem::size_of::<usize>()]), None);
    }

    #[test]
    fn the_numbers_read_for_this_process_are_plausible() {
        let p = ProcessStats::read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = p.start_time_seconds.expect("start time");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "started at {start}, now {now}"
        );
        assert!(p.cpu_seconds.expect("cpu") >= 0.0);
        assert!(p.resident_memory_bytes.expect("rss") > 1_000_000.0, "{p:?}");
        assert!(p.virtual_memory_bytes.expect("vsz") >= p.resident_memory_bytes.unwrap());
        assert!(p.open_fds.expect("fds") >= 3.0, "{p:?}");
    }
}
