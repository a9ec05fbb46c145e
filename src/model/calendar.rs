//! Calendar rules that follow the fulfillment network's wall clock, Central
//! Time (America/Chicago, daylight saving included): the operations day
//! (06:00 to 06:00), when a shipped order completes, and how many business
//! days a parcel has gone without a scan.

use std::sync::LazyLock;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::Timestamp;

/// The zone the operations team works in. The database is bundled into the
/// binary, so the answer does not depend on the host's zoneinfo.
static CENTRAL: LazyLock<TimeZone> =
    LazyLock::new(|| TimeZone::get("America/Chicago").unwrap_or(TimeZone::UTC));

/// Local hour at which an operations day starts: yesterday's shipped orders
/// become completed then, and the FCs' daily capacity starts afresh.
const OPERATIONS_DAY_STARTS_HOUR: i8 = 6;

/// An operations day, 06:00 Central to 06:00 Central the next calendar day,
/// named by the date it starts on: days since 1970-01-01. Daily FC capacity
/// is counted per operations day (RULES §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationsDay(pub i32);

impl OperationsDay {
    /// The operations day `time` falls in. Clamped to jiff's calendar, as
    /// every rule here is.
    pub fn of(time: Timestamp) -> Self {
        let zoned = to_jiff(time).to_zoned(CENTRAL.clone());
        let date = if zoned.hour() < OPERATIONS_DAY_STARTS_HOUR {
            zoned.date().yesterday().unwrap_or(Date::MIN)
        } else {
            zoned.date()
        };
        let days = date
            .since(EPOCH)
            .map_or(0, |span| i64::from(span.get_days()));
        Self(days as i32)
    }

    /// The date the day starts on (for people and metric labels).
    pub fn date(self) -> Date {
        EPOCH
            .checked_add(jiff::Span::new().days(i64::from(self.0)))
            .unwrap_or(if self.0 < 0 { Date::MIN } else { Date::MAX })
    }
}

const EPOCH: Date = jiff::civil::date(1970, 1, 1);

/// When an order whose last tracking number was uploaded at `uploaded`
/// reads COMPLETED: 06:00 Central on the next calendar day.
pub fn completion_time(uploaded: Timestamp) -> Timestamp {
    let next_day = local_date(uploaded).tomorrow().unwrap_or(Date::MAX);
    let completes = next_day
        .at(OPERATIONS_DAY_STARTS_HOUR, 0, 0, 0)
        .to_zoned(CENTRAL.clone())
        .map(|zoned| zoned.timestamp())
        .unwrap_or(jiff::Timestamp::MAX);
    from_jiff(completes)
}

/// Business days (Monday to Friday, Central dates) after `from`'s date up to
/// and including `to`'s date. A parcel picked up on a Friday has gone 1
/// business day without a scan on Monday, not 3.
pub fn business_days_between(from: Timestamp, to: Timestamp) -> u32 {
    let (start, end) = (local_date(from), local_date(to));
    if end <= start {
        return 0;
    }
    let days = start
        .until(end)
        .map(|span| i64::from(span.get_days()))
        .unwrap_or(0);
    let full_weeks = days / 7;
    let mut count = full_weeks * 5;
    // The remaining days (fewer than a week) are counted one by one.
    let mut day = start;
    for _ in 0..days % 7 {
        day = day.tomorrow().unwrap_or(Date::MAX);
        if !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
            count += 1;
        }
    }
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn local_date(time: Timestamp) -> Date {
    to_jiff(time).to_zoned(CENTRAL.clone()).date()
}

/// Instants outside jiff's range (years beyond ±9999) are clamped to it.
fn to_jiff(time: Timestamp) -> jiff::Timestamp {
    let seconds = time.seconds.clamp(
        jiff::Timestamp::MIN.as_second(),
        jiff::Timestamp::MAX.as_second(),
    );
    jiff::Timestamp::new(seconds, time.nanos as i32).unwrap_or(if seconds < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

fn from_jiff(time: jiff::Timestamp) -> Timestamp {
    Timestamp {
        seconds: time.as_second(),
        nanos: time.subsec_nanosecond().max(0) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds since the epoch of a Central wall-clock time.
    fn central(text: &str) -> Timestamp {
        let civil: jiff::civil::DateTime = text.parse().unwrap();
        from_jiff(civil.to_zoned(CENTRAL.clone()).unwrap().timestamp())
    }

    fn utc(text: &str) -> Timestamp {
        from_jiff(text.parse::<jiff::Timestamp>().unwrap())
    }

    #[test]
    fn completes_at_six_central_the_next_day() {
        // Winter: CST is UTC-6, so 06:00 CST is 12:00 UTC.
        assert_eq!(
            completion_time(central("2026-01-14T15:30")),
            utc("2026-01-15T12:00:00Z")
        );
        // Summer: CDT is UTC-5.
        assert_eq!(
            completion_time(central("2026-07-14T23:59")),
            utc("2026-07-15T11:00:00Z")
        );
        // Shortly after local midnight it is already "today": tomorrow 06:00.
        assert_eq!(
            completion_time(central("2026-07-15T00:01")),
            utc("2026-07-16T11:00:00Z")
        );
    }

    #[test]
    fn completion_follows_daylight_saving_changes() {
        // DST starts 2026-03-08 02:00 CST: uploaded the evening before (CST),
        // completion at 06:00 CDT = 11:00 UTC, not 12:00.
        assert_eq!(
            completion_time(central("2026-03-07T20:00")),
            utc("2026-03-08T11:00:00Z")
        );
        // DST ends 2026-11-01 02:00 CDT: completion at 06:00 CST = 12:00 UTC.
        assert_eq!(
            completion_time(central("2026-10-31T20:00")),
            utc("2026-11-01T12:00:00Z")
        );
    }

    #[test]
    fn weekends_are_not_business_days() {
        let friday = central("2026-11-20T17:00");
        assert_eq!(
            business_days_between(friday, central("2026-11-21T12:00")),
            0
        );
        assert_eq!(
            business_days_between(friday, central("2026-11-22T12:00")),
            0
        );
        assert_eq!(
            business_days_between(friday, central("2026-11-23T08:00")),
            1
        );
        assert_eq!(
            business_days_between(friday, central("2026-11-27T08:00")),
            5
        );
        // Three full weeks and a day later: 15 + 1.
        assert_eq!(
            business_days_between(friday, central("2026-12-14T08:00")),
            16
        );
        // Same day, or backwards in time: none.
        assert_eq!(
            business_days_between(friday, central("2026-11-20T23:00")),
            0
        );
        assert_eq!(
            business_days_between(friday, central("2026-11-19T08:00")),
            0
        );
    }

    #[test]
    fn operations_days_start_at_six_central_across_daylight_saving() {
        let day = |text: &str| OperationsDay::of(central(text));
        // 05:59 still belongs to the day before; 06:00 starts the next.
        assert_eq!(
            day("2026-01-15T05:59").date(),
            jiff::civil::date(2026, 1, 14)
        );
        assert_eq!(
            day("2026-01-15T06:00").date(),
            jiff::civil::date(2026, 1, 15)
        );
        assert_eq!(day("2026-01-15T23:59"), day("2026-01-16T05:59"));
        // DST starts 2026-03-08: that day starts at 06:00 CDT = 11:00 UTC.
        assert_eq!(
            OperationsDay::of(utc("2026-03-08T10:59:59Z")).date(),
            jiff::civil::date(2026, 3, 7)
        );
        assert_eq!(
            OperationsDay::of(utc("2026-03-08T11:00:00Z")).date(),
            jiff::civil::date(2026, 3, 8)
        );
        // DST ends 2026-11-01: 06:00 CST = 12:00 UTC.
        assert_eq!(
            OperationsDay::of(utc("2026-11-01T11:59:59Z")).date(),
            jiff::civil::date(2026, 10, 31)
        );
        assert_eq!(
            OperationsDay::of(utc("2026-11-01T12:00:00Z")).date(),
            jiff::civil::date(2026, 11, 1)
        );
        assert_eq!(OperationsDay::of(utc("1970-01-01T12:00:00Z")).0, 0);
    }

    #[test]
    fn instants_beyond_the_calendar_do_not_panic() {
        let far = Timestamp::from_seconds(i64::MAX);
        let before = Timestamp::from_seconds(i64::MIN);
        assert!(completion_time(far) >= completion_time(before));
        assert!(business_days_between(before, far) > 0);
        assert!(OperationsDay::of(far) > OperationsDay::of(before));
        assert!(OperationsDay::of(far).date() > OperationsDay::of(before).date());
    }
}
