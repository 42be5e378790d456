//! Integration tests of the worker against real servers from the test kit (redis-server, nx-27017 or
//! a real mongod when `MONGODB_URI` is set). One test binary; arrangements live in `helpers`.

mod cases;
mod helpers;
