//! The update function's handler tests: real function-URL / API Gateway v2 events against a real
//! `redis-server` from the test kit.

mod helpers;
mod jwt_rejections;
mod update_handler;
mod update_limits;
