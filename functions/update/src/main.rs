//! The update Lambda: `POST /api/v1/scores/update` → one Redis script call → `202`.

use lambda_http::{Error, service_fn};
use scoreboard_shared::config::Env;
use update::UpdateService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    scoreboard_shared::logging::init();
    let service = UpdateService::from_env(&Env::from_process())?;
    let service = &service;
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, std::convert::Infallible>(service.handle(request).await)
    }))
    .await
}
