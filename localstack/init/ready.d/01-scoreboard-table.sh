#!/usr/bin/env bash
# Creates the scoreboard's DynamoDB table, idempotently: on-demand billing, string partition key `pk`,
# nothing expiring. The same layout as template.yaml and as `DynamoStore::ensure_table` in the worker.
#
# LocalStack runs it from /etc/localstack/init/ready.d (with `awslocal`); anywhere else it uses the AWS
# CLI and $AWS_ENDPOINT_URL (DynamoDB Local, LocalStack on the host):
#   AWS_ENDPOINT_URL=http://localhost:4566 DYNAMODB_TABLE=scoreboard localstack/init/ready.d/01-scoreboard-table.sh
set -euo pipefail

table="${DYNAMODB_TABLE:-scoreboard}"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  aws=(aws --endpoint-url "$AWS_ENDPOINT_URL")
elif command -v awslocal >/dev/null 2>&1; then
  aws=(awslocal)
else
  aws=(aws)
fi
aws+=(--region "$region" --output text)

if "${aws[@]}" dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
  echo "table $table: exists"
elif "${aws[@]}" dynamodb create-table \
  --table-name "$table" \
  --attribute-definitions AttributeName=pk,AttributeType=S \
  --key-schema AttributeName=pk,KeyType=HASH \
  --billing-mode PAY_PER_REQUEST >/dev/null; then
  echo "table $table: created"
else
  # Lost a race with a concurrent setup? Then it exists now; otherwise fail.
  "${aws[@]}" dynamodb describe-table --table-name "$table" >/dev/null
  echo "table $table: created concurrently"
fi
"${aws[@]}" dynamodb wait table-exists --table-name "$table"
