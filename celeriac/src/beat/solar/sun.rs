//! Where the Sun is, and when it crosses an altitude or the meridian, computed the way PyEphem
//! (which Celery's `solar` calls) searches for them, so that a solar schedule runs when a
//! Python beat would run it.
//!
//! The position is the low-precision solar theory of Meeus, *Astronomical Algorithms* (2nd ed.)
//! ch. 25, with the main nutation terms and aberration (apparent place, true equinox of date),
//! apparent sidereal time (ch. 12), and topocentric parallax at sea level (ch. 40): about 0.01°
//! in longitude, a few seconds of time at a rising. PyEphem uses the full VSOP87 theory; its
//! extra precision moves a sunrise by seconds, while a beat ticks once a second and Celery's
//! every few. The searches are PyEphem 4.2's `_find_rise_or_set` and `_compute_transit`
//! step for step (the same first bump, Newton steps, precision and iteration counts), so they
//! converge on the same crossing and agree on when the Sun does not cross at all.
//!
//! Times are `f64` days since J2000.0 (2000-01-01 12:00 UT), angles radians.

use std::f64::consts::{PI, TAU};

/// One second in days.
pub(super) const SECOND: f64 = 1.0 / 86_400.0;

/// PyEphem's `default_newton_precision`: a tenth of a second.
const PRECISION: f64 = SECOND / 10.0;

/// PyEphem's `rise_set_iterations`.
const RISE_SET_ITERATIONS: usize = 7;

/// PyEphem's `tiny`: an arcsecond over 360, the "already there" bound of a transit search.
const TINY: f64 = PI / 180.0 / 3600.0 / 360.0;

/// TT − UT in seconds. It moves the Sun by a tenth of an arcsecond, so a constant (its value
/// in the 2020s) serves every date a schedule sees.
const DELTA_T: f64 = 69.0;

/// The Sun's angular radius at one astronomical unit (959.63″).
const SOLAR_RADIUS_AT_1_AU: f64 = 959.63 / 3600.0 * PI / 180.0;

/// The Sun's equatorial horizontal parallax at one astronomical unit (8.794″).
const PARALLAX_AT_1_AU: f64 = 8.794 / 3600.0 * PI / 180.0;

/// A place on the Earth at sea level.
#[derive(Debug, Clone, Copy)]
pub(super) struct Observer {
    latitude: f64,
    /// East positive.
    longitude: f64,
    /// ρ sin φ′ and ρ cos φ′: the geocentric position of the place (Meeus ch. 11).
    rho_sin: f64,
    rho_cos: f64,
}

/// The Sun seen from an [`Observer`] at one instant.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Topocentric hour angle (PyEphem's `ha`), in `[0, τ)`.
    hour_angle: f64,
    /// Topocentric declination (PyEphem's `dec`).
    declination: f64,
    /// Geocentric hour angle (local apparent sidereal time − PyEphem's `g_ra`).
    geocentric_hour_angle: f64,
    /// Angular radius (PyEphem's `radius`).
    radius: f64,
}

/// The Sun never crosses the altitude during the circuit the search was in: PyEphem's
/// `CircumpolarError` (`AlwaysUpError` or `NeverUpError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Circumpolar;

impl Observer {
    /// An observer at `latitude`, `longitude` (degrees, east positive).
    pub(super) fn new(latitude: f64, longitude: f64) -> Observer {
        // The Earth's polar over equatorial radius (b/a).
        const AXES: f64 = 0.996_647_19;
        let latitude = latitude.to_radians();
        let u = (AXES * latitude.tan()).atan();
        Observer {
            latitude,
            longitude: longitude.to_radians(),
            rho_sin: AXES * u.sin(),
            rho_cos: u.cos(),
        }
    }

    fn see(&self, day: f64) -> Seen {
        let t = (day + DELTA_T * SECOND) / 36_525.0;
        let degrees = |value: f64| value.rem_euclid(360.0).to_radians();
        let mean_longitude = degrees(280.46646 + 36_000.769_83 * t + 0.000_303_2 * t * t);
        let mean_anomaly = degrees(357.52911 + 35_999.050_29 * t - 0.000_153_7 * t * t);
        let eccentricity = 0.016_708_634 - 0.000_042_037 * t - 0.000_000_126_7 * t * t;
        let center = ((1.914_602 - 0.004_817 * t - 0.000_014 * t * t) * mean_anomaly.sin()
            + (0.019_993 - 0.000_101 * t) * (2.0 * mean_anomaly).sin()
            + 0.000_289 * (3.0 * mean_anomaly).sin())
        .to_radians();
        let true_longitude = mean_longitude + center;
        let anomaly = mean_anomaly + center;
        let distance = 1.000_001_018 * (1.0 - eccentricity * eccentricity)
            / (1.0 + eccentricity * anomaly.cos());
        // The Moon's node and mean longitude, for nutation.
        let node = degrees(125.04452 - 1_934.136_261 * t);
        let moon = degrees(218.3165 + 481_267.881_3 * t);
        let arcseconds = |value: f64| (value / 3600.0).to_radians();
        let nutation_longitude = arcseconds(
            -17.20 * node.sin() - 1.32 * (2.0 * mean_longitude).sin() - 0.23 * (2.0 * moon).sin()
                + 0.21 * (2.0 * node).sin(),
        );
        let nutation_obliquity = arcseconds(
            9.20 * node.cos() + 0.57 * (2.0 * mean_longitude).cos() + 0.10 * (2.0 * moon).cos()
                - 0.09 * (2.0 * node).cos(),
        );
        let obliquity = (23.439_291_1 - 0.013_004_2 * t - 1.64e-7 * t * t + 5.04e-7 * t * t * t)
            .to_radians()
            + nutation_obliquity;
        let aberration = arcseconds(-20.4898 / distance);
        let longitude = true_longitude + nutation_longitude + aberration;
        let right_ascension = (obliquity.cos() * longitude.sin()).atan2(longitude.cos());
        let declination = (obliquity.sin() * longitude.sin()).asin();

        let ut_t = day / 36_525.0;
        let mean_sidereal = degrees(
            280.460_618_37 + 360.985_647_366_29 * day + 0.000_387_933 * ut_t * ut_t
                - ut_t * ut_t * ut_t / 38_710_000.0,
        );
        let local_sidereal = mean_sidereal + nutation_longitude * obliquity.cos() + self.longitude;
        let geocentric_hour_angle = (local_sidereal - right_ascension).rem_euclid(TAU);

        let parallax = (PARALLAX_AT_1_AU.sin() / distance).asin();
        let shift_denominator =
            declination.cos() - self.rho_cos * parallax.sin() * geocentric_hour_angle.cos();
        let ra_shift =
            (-self.rho_cos * parallax.sin() * geocentric_hour_angle.sin()).atan2(shift_denominator);
        let topocentric_declination = ((declination.sin() - self.rho_sin * parallax.sin())
            * ra_shift.cos())
        .atan2(shift_denominator);
        Seen {
            hour_angle: (geocentric_hour_angle - ra_shift).rem_euclid(TAU),
            declination: topocentric_declination,
            geocentric_hour_angle,
            radius: SOLAR_RADIUS_AT_1_AU / distance,
        }
    }

    /// The hour angle at which the Sun's altitude is `altitude`, clamped as PyEphem clamps it
    /// (`_target_hour_angle`); `Err` carries the clamped angle when there is none.
    fn target_hour_angle(&self, declination: f64, altitude: f64) -> Result<f64, f64> {
        let argument = (altitude.sin() - self.latitude.sin() * declination.sin())
            / (self.latitude.cos() * declination.cos());
        if argument < -1.0 {
            Err(PI + 1e-15)
        } else if argument > 1.0 {
            Err(-1e-15)
        } else {
            Ok(argument.acos())
        }
    }

    /// The first time after `start` that the Sun rises (`rising`) or sets through `horizon`,
    /// its centre (`use_center`) or its upper limb: PyEphem's `next_rising`/`next_setting`
    /// with `pressure = 0`.
    pub(super) fn next_rise_or_set(
        &self,
        start: f64,
        horizon: f64,
        use_center: bool,
        rising: bool,
    ) -> Result<f64, Circumpolar> {
        let mut day = start;
        let mut first = true;
        let mut target = Ok(0.0);
        for _ in 0..RISE_SET_ITERATIONS {
            let seen = self.see(day);
            let altitude = if use_center {
                horizon
            } else {
                horizon - seen.radius
            };
            target = self.target_hour_angle(seen.declination, altitude);
            let absolute = target.unwrap_or_else(|clamped| clamped);
            let wanted = if rising { -absolute } else { absolute };
            let difference = wanted - seen.hour_angle;
            let bump = if first {
                first = false;
                let bump = difference.rem_euclid(TAU) / TAU;
                if bump.abs() < PRECISION {
                    // Already at the event: the next one.
                    bump + 1.0
                } else {
                    bump
                }
            } else {
                ((difference - PI).rem_euclid(TAU) - PI) / TAU
            };
            if bump.abs() < PRECISION {
                break;
            }
            day += bump;
        }
        match target {
            Ok(_) => Ok(day),
            Err(_) => Err(Circumpolar),
        }
    }

    /// The first time after `start` that the Sun's centre crosses the meridian (`offset` 0,
    /// PyEphem's `next_transit`) or the anti-meridian (`offset` π, `next_antitransit`).
    pub(super) fn next_transit(&self, start: f64, offset: f64) -> f64 {
        let error = |day: f64| {
            let hour_angle = self.see(day).geocentric_hour_angle;
            (offset - hour_angle + PI).rem_euclid(TAU) - PI
        };
        let hour_angle = self.see(start).geocentric_hour_angle;
        let mut to_move = (offset - hour_angle).rem_euclid(TAU);
        if to_move.abs() < TINY {
            to_move = TAU;
        }
        // PyEphem's `newton(f, d, d + minute)`: secant steps until a step is below precision.
        let mut x0 = start + to_move / TAU;
        let mut x1 = x0 + 60.0 * SECOND;
        let (mut f0, mut f1) = (error(x0), error(x1));
        for _ in 0..100 {
            if f1 == 0.0 || (x1 - x0).abs() <= PRECISION || f1 == f0 {
                break;
            }
            let next = x1 + (x1 - x0) / (f0 / f1 - 1.0);
            (x0, x1) = (x1, next);
            (f0, f1) = (f1, error(x1));
        }
        x1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meeus example 25.a: 1992-10-13 0h TD, apparent α 198.38083°, δ −7.78507°.
    #[test]
    fn meeus_example_position() {
        let observer = Observer::new(0.0, 0.0);
        let day = -2_636.5 - DELTA_T * SECOND;
        let seen = observer.see(day);
        // Back out the geocentric right ascension from the hour angle and sidereal time.
        let t = day / 36_525.0;
        let sidereal =
            (280.460_618_37 + 360.985_647_366_29 * day + 0.000_387_933 * t * t).rem_euclid(360.0);
        let right_ascension =
            (sidereal - seen.geocentric_hour_angle.to_degrees()).rem_euclid(360.0);
        assert!(
            (right_ascension - 198.38083).abs() < 0.01,
            "{right_ascension}"
        );
        assert!(
            (seen.declination.to_degrees() - -7.78507).abs() < 0.01,
            "{}",
            seen.declination.to_degrees()
        );
    }
}
