//! Minimal logging to stderr in the glog-like shape Dragonfly users know
//! (`I20261122 04:22:03.123456 main] message`). Logging is off the data path.

fn stamp(level: char) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, mo, d, h, mi, s) = civil(secs);
    format!(
        "{level}{y:04}{mo:02}{d:02} {h:02}:{mi:02}:{s:02}.{:06}",
        now.subsec_micros()
    )
}

/// Unix seconds -> (year, month, day, hour, minute, second), UTC.
pub fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

pub fn info(msg: &str) {
    eprintln!("{} {}] {}", stamp('I'), std::process::id(), msg);
}

pub fn warn(msg: &str) {
    eprintln!("{} {}] {}", stamp('W'), std::process::id(), msg);
}

pub fn error(msg: &str) {
    eprintln!("{} {}] {}", stamp('E'), std::process::id(), msg);
}
