//! The fulfillment network (RULES §12): FCs as places with a location and a
//! daily order capacity, shared by every merchant, and how a merchant
//! chooses among the FCs that can ship an order.

use super::FcId;

/// The largest latitude and longitude, in degrees (either sign).
pub const LATITUDE_MAX: f64 = 90.0;
pub const LONGITUDE_MAX: f64 = 180.0;

/// Mean Earth radius: the great-circle distance's scale.
pub const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// A point on Earth, in degrees: latitude in −90..=90, longitude in
/// −180..=180, both finite (checked at the edge). Compared and hashed by
/// bits, which is exact for finite values once −0 is read as 0.
#[derive(Clone, Copy, Debug)]
pub struct GeoPoint {
    latitude: f64,
    longitude: f64,
}

impl GeoPoint {
    /// `None` unless both are finite and in range.
    pub fn new(latitude: f64, longitude: f64) -> Option<Self> {
        let valid = latitude.is_finite()
            && longitude.is_finite()
            && (-LATITUDE_MAX..=LATITUDE_MAX).contains(&latitude)
            && (-LONGITUDE_MAX..=LONGITUDE_MAX).contains(&longitude);
        // `+ 0.0` turns −0 into 0, so equal points have equal bits.
        valid.then_some(Self {
            latitude: latitude + 0.0,
            longitude: longitude + 0.0,
        })
    }

    pub fn latitude(self) -> f64 {
        self.latitude
    }

    pub fn longitude(self) -> f64 {
        self.longitude
    }

    /// The point on the unit sphere: two points' dot product orders
    /// distances without any trigonometry per comparison.
    pub fn unit_vector(self) -> [f64; 3] {
        let (lat, lon) = (self.latitude.to_radians(), self.longitude.to_radians());
        [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
    }

    /// Great-circle distance (the haversine formula).
    pub fn distance_km(self, other: GeoPoint) -> f64 {
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.longitude - self.longitude).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
    }
}

impl PartialEq for GeoPoint {
    fn eq(&self, other: &Self) -> bool {
        self.latitude.to_bits() == other.latitude.to_bits()
            && self.longitude.to_bits() == other.longitude.to_bits()
    }
}

impl Eq for GeoPoint {}

impl std::hash::Hash for GeoPoint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.latitude.to_bits().hash(state);
        self.longitude.to_bits().hash(state);
    }
}

/// Distance between two unit vectors, in km (as `distance_km`, from the
/// chord between them).
pub fn distance_between(a: [f64; 3], b: [f64; 3]) -> f64 {
    let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
    2.0 * EARTH_RADIUS_KM * (chord / 2.0).min(1.0).asin()
}

/// An FC as the network knows it. An FC never upserted has no location and
/// no capacity limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FulfillmentCenter {
    pub fc: FcId,
    pub name: String,
    pub location: Option<GeoPoint>,
    /// Orders it takes per operations day; 0: no limit.
    pub daily_order_capacity: u32,
}

/// How a merchant chooses among the FCs that can ship an order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RoutingStrategy {
    /// The merchant's `fc_priority`, then FC id.
    #[default]
    Ranked,
    /// The nearest to the order's `ship_to`, ties by rank (RULES §12).
    Closest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_city_pairs() {
        let new_york = GeoPoint::new(40.7128, -74.0060).unwrap();
        let los_angeles = GeoPoint::new(34.0522, -118.2437).unwrap();
        let distance = new_york.distance_km(los_angeles);
        assert!((distance - 3_936.0).abs() < 5.0, "{distance}");
        let chord = distance_between(new_york.unit_vector(), los_angeles.unit_vector());
        assert!((chord - distance).abs() < 1e-6, "{chord} vs {distance}");
        assert_eq!(new_york.distance_km(new_york), 0.0);
        // Antipodes: half the circumference.
        let north = GeoPoint::new(90.0, 0.0).unwrap();
        let south = GeoPoint::new(-90.0, 0.0).unwrap();
        let half = std::f64::consts::PI * EARTH_RADIUS_KM;
        assert!((north.distance_km(south) - half).abs() < 1e-6);
    }

    #[test]
    fn only_finite_in_range_points_exist() {
        assert!(GeoPoint::new(91.0, 0.0).is_none());
        assert!(GeoPoint::new(0.0, -180.5).is_none());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_none());
        assert!(GeoPoint::new(0.0, f64::INFINITY).is_none());
        assert_eq!(GeoPoint::new(-0.0, 0.0), GeoPoint::new(0.0, 0.0));
    }
}
