//! The differences between an expected item and the delivered one it was
//! matched with: attributes by location and key, the other fields, and
//! the timestamp shift.
