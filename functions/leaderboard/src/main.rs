//! The leaderboard Lambda: `GET /api/v1/scores/leaderboard` and `GET /api/v1/scores/me`.

use lambda_http::{Error, service_fn};
use leaderboard::LeaderboardService;
use scoreboard_shared::config::Env;
use scoreboard_shared::secrets;

#[tokio::main]
async fn main() -> Result<(), Error> {
    scoreboard_shared::logging::init();
    // Secrets (`JWT_SECRET_ARN`, `REDIS_URL_SECRET_ARN`) are read once here, for the instance's lifetime.
    let env = secrets::resolve(Env::from_process()).await?;
    let service = LeaderboardService::from_env(&env)?;
    let service = &service;
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, std::convert::Infallible>(service.handle(request).await)
    }))
    .await
}
