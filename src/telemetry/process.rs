//! The standard `process_*` metrics (as the Prometheus client libraries name
//! them), read from `/proc/self` when Prometheus scrapes. Linux only:
//! elsewhere they are left out of the scrape.

/// Append the process metrics, in Prometheus text format, to `out`.
#[cfg(target_os = "linux")]
pub fn render(out: &mut String) {
    linux::render(out);
}

/// Append the process metrics, in Prometheus text format, to `out`.
#[cfg(not(target_os = "linux"))]
pub fn render(_out: &mut String) {}

#[cfg(any(target_os = "linux", test))]
mod parse {
    /// What `/proc/self/stat` says, in its own units.
    #[derive(Debug, PartialEq)]
    pub struct Stat {
        /// User and system CPU time, in clock ticks.
        pub cpu_ticks: u64,
        /// Start time, in clock ticks after boot.
        pub start_ticks: u64,
        /// Virtual memory size, in bytes.
        pub virtual_bytes: u64,
    }

    /// Parse `/proc/<pid>/stat` (see proc(5)). The command name (field 2)
    /// is in parentheses and may itself hold spaces and parentheses, so
    /// the fields are counted from the last `)`.
    pub fn stat(text: &str) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        // `rest` starts at field 3 (state): field n is at index n - 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            cpu_ticks: field(14)? + field(15)?,
            start_ticks: field(22)?,
            virtual_bytes: field(23)?,
        })
    }

    /// The value of the `name:` line of `/proc/self/status` given in kB, in bytes.
    pub fn status_bytes(text: &str, name: &str) -> Option<u64> {
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?;
        let mut words = line.split_whitespace();
        let kilobytes = words.next()?.parse::<u64>().ok()?;
        (words.next() == Some("kB")).then_some(kilobytes * 1024)
    }

    /// The soft limit on open files from `/proc/self/limits`.
    pub fn max_open_files(text: &str) -> Option<u64> {
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix("Max open files"))?;
        line.split_whitespace().next()?.parse().ok()
    }

    /// The boot time, in seconds since the epoch, from `/proc/stat`.
    pub fn boot_time(text: &str) -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fmt::Write;
    use std::sync::OnceLock;

    use super::parse;

    /// The kernel reports times in `/proc` in USER_HZ, which is 100 on
    /// every architecture Linux runs this on (the Prometheus procfs
    /// library assumes the same).
    const TICKS_PER_SECOND: f64 = 100.0;

    fn read(path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }

    pub fn render(out: &mut String) {
        let stat = read("/proc/self/stat").and_then(|text| parse::stat(&text));
        if let Some(stat) = &stat {
            metric(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                stat.cpu_ticks as f64 / TICKS_PER_SECOND,
            );
        }
        if let Some(fds) = open_fds() {
            metric(
                out,
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                fds as f64,
            );
        }
        if let Some(max) = read("/proc/self/limits").and_then(|text| parse::max_open_files(&text)) {
            metric(
                out,
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max as f64,
            );
        }
        if let Some(rss) = read("/proc/self/status").and_then(|t| parse::status_bytes(&t, "VmRSS"))
        {
            metric(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                rss as f64,
            );
        }
        if let Some(stat) = &stat {
            metric(
                out,
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                stat.virtual_bytes as f64,
            );
        }
        if let Some(start) = start_time(stat.as_ref()) {
            metric(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                start,
            );
        }
    }

    /// Entries of `/proc/self/fd`, less the one the listing itself holds open.
    fn open_fds() -> Option<usize> {
        let entries = std::fs::read_dir("/proc/self/fd").ok()?;
        Some(entries.count().saturating_sub(1))
    }

    /// Constant for the process's life: worked out once.
    fn start_time(stat: Option<&parse::Stat>) -> Option<f64> {
        static START: OnceLock<Option<f64>> = OnceLock::new();
        *START.get_or_init(|| {
            let boot = read("/proc/stat").and_then(|text| parse::boot_time(&text))?;
            Some(boot as f64 + stat?.start_ticks as f64 / TICKS_PER_SECOND)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "8361 (a (b) c) R 8359 8359 28780 0 -1 4194304 101 0 0 0 7 5 0 0 20 0 1 0 \
                    1280990 3133440 412 18446744073709551615 94217056677888";
        assert_eq!(
            parse::stat(text),
            Some(parse::Stat {
                cpu_ticks: 12,
                start_ticks: 1280990,
                virtual_bytes: 3133440,
            })
        );
        assert_eq!(parse::stat("8361 (cat) R 1 2"), None);
    }

    #[test]
    fn status_limits_and_boot_time() {
        let status = "Name:\tcat\nVmSize:\t    3892 kB\nVmRSS:\t    2168 kB\n";
        assert_eq!(parse::status_bytes(status, "VmRSS"), Some(2168 * 1024));
        assert_eq!(parse::status_bytes(status, "VmSize"), Some(3892 * 1024));
        assert_eq!(parse::status_bytes(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                40000                files\n";
        assert_eq!(parse::max_open_files(limits), Some(20000));
        assert_eq!(
            parse::boot_time("cpu  1 2 3\nbtime 1796162877\nprocesses 9\n"),
            Some(1796162877)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_every_metric() {
        let mut out = String::new();
        super::render(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
        ] {
            let value = out
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
            assert!(value.parse::<f64>().unwrap() >= 0.0, "{name} {value}");
        }
    }
}
