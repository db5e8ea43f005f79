//! N-API binding of `taskito-core`: the `NativeCore` class (conversions and `map_error` only).
