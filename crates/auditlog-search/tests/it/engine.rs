//! Engine behaviour beyond matching: read-your-writes, restart, rebuild, limits.
