//! The canonical SHA-256 of a side's items: independent of how the items
//! were batched into requests and of their order.
