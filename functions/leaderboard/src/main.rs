//! The leaderboard Lambda: `GET /api/v1/scores/leaderboard` and `GET /api/v1/scores/me`.

use lambda_http::{Error, service_fn};
use leaderboard::LeaderboardService;
use scoreboard_shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    scoreboard_shared::logging::init();
    let service = LeaderboardService::from_env(&Env::from_process())?;
    let service = &service;
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, std::convert::Infallible>(service.handle(request).await)
    }))
    .await
}
