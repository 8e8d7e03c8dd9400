//! A table of crontabs and their English descriptions.

use crate::beat::Crontab;

#[test]
fn descriptions() {
    let cases = [
        ("* * * * *", "Every minute"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 * * * *", "Every hour"),
        ("5 * * * *", "At minute 5 past every hour"),
        ("0,30 * * * *", "At minutes 0 and 30 past every hour"),
        ("*/30 * * * *", "At minutes 0 and 30 past every hour"),
        ("*/20 * * * *", "Every 20 minutes"),
        ("0,20 * * * *", "At minutes 0 and 20 past every hour"),
        ("0 */2 * * *", "At minute 0 past every 2nd hour"),
        ("30 7 * * 1,5", "At 07:30 on Monday and Friday"),
        ("0 9 1 * *", "At 09:00 on day 1 of the month"),
        ("0 9,17 * * *", "At 09:00 and 17:00"),
        ("0,30 9,17 * * *", "At 09:00, 09:30, 17:00 and 17:30"),
        ("0 0 * * *", "At 00:00"),
        ("0 9 * * mon-fri", "At 09:00 on Monday through Friday"),
        ("0 10 * * sat,sun", "At 10:00 on Saturday and Sunday"),
        (
            "0 0 * * */2",
            "At 00:00 on Tuesday, Thursday, Saturday and Sunday",
        ),
        (
            "*/10 9-17 * * 1-5",
            "Every 10 minutes past hours 9 through 17 on Monday through Friday",
        ),
        ("* 9 * * *", "Every minute past hour 9"),
        ("0-10 * * * *", "At minutes 0 through 10 past every hour"),
        (
            "5-50/15 * * * *",
            "Every 15 minutes from minute 5 through 50",
        ),
        ("0 8-20/4 * * *", "At 08:00, 12:00, 16:00 and 20:00"),
        (
            "0 2-22/4 * * *",
            "At minute 0 past every 4th hour from 2 through 22",
        ),
        (
            "15 1,3,5,7,9 * * *",
            "At minute 15 past every 2nd hour from 1 through 9",
        ),
        ("0 12 */2 * *", "At 12:00 on every 2nd day of the month"),
        (
            "0 12 1-15/7 * *",
            "At 12:00 on every 7th day from 1 through 15 of the month",
        ),
        ("0 12 1,15 * *", "At 12:00 on days 1 and 15 of the month"),
        (
            "0 9 1-7 * mon",
            "At 09:00 on days 1 through 7 of the month if it is a Monday",
        ),
        ("0 0 1 1 *", "At 00:00 on day 1 of the month in January"),
        (
            "0 0 1 */3 *",
            "At 00:00 on day 1 of the month in January, April, July and October",
        ),
        ("0 6 * jun-aug *", "At 06:00 in June through August"),
        (
            "0 0 13 * fri",
            "At 00:00 on day 13 of the month if it is a Friday",
        ),
        (
            "0 0 29 2 mon,tue",
            "At 00:00 on day 29 of the month if it is a Monday or Tuesday in February",
        ),
        ("1,2,3,4,5 0 * * *", "At minutes 1 through 5 past hour 0"),
    ];
    for (expression, expected) in cases {
        let crontab: Crontab = expression.parse().unwrap();
        assert_eq!(crontab.describe(), expected, "for {expression:?}");
    }
}

#[test]
fn zone_other_than_utc_is_named() {
    let crontab = Crontab::parse_cron("30 7 * * 1,5", "America/New_York").unwrap();
    assert_eq!(
        crontab.describe(),
        "At 07:30 on Monday and Friday (America/New_York)"
    );
}
