// RL.HIT from Node (ioredis), mapped to HTTP rate-limit headers.
//
// Headers: draft-ietf-httpapi-ratelimit-headers-07 (RateLimit-Policy,
// RateLimit), the older X-RateLimit-* trio, and Retry-After when denied.
//
//   REDIS_URL=redis://127.0.0.1:6379 node examples/node/ratelimit-headers.js
"use strict";

const Redis = require("ioredis");

const LIMIT = 3; // requests ...
const WINDOW_S = 10; // ... per 10 seconds
const LIMITS = `${LIMIT}/${WINDOW_S}s`;

// Maps the five integers of RL.HIT to { status, headers: [[name, value], ...] }.
function rateLimitHeaders([allowed, limit, remaining, resetAfterMs, retryAfterMs]) {
  const reset = Math.ceil(resetAfterMs / 1000); // whole seconds, rounded up
  const headers = [
    ["RateLimit-Policy", `${LIMIT};w=${WINDOW_S}`],
    ["RateLimit", `limit=${limit}, remaining=${remaining}, reset=${reset}`],
    ["X-RateLimit-Limit", String(limit)],
    ["X-RateLimit-Remaining", String(remaining)],
    ["X-RateLimit-Reset", String(reset)],
  ];
  // retryAfterMs === -1: the request can never pass (COST > limit).
  if (!allowed && retryAfterMs >= 0) {
    headers.push(["Retry-After", String(Math.ceil(retryAfterMs / 1000))]);
  }
  return { status: allowed ? "200 OK" : "429 Too Many Requests", headers };
}

async function main() {
  const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379", {
    maxRetriesPerRequest: 1,
  });
  try {
    const key = `example:node:${process.pid}`;
    await redis.call("RL.CLEAR", key);
    // Requests 1-3 pass, 4 is denied (Retry-After), 5 costs 4 > 3 (never).
    const costs = [1, 1, 1, 1, 4];
    for (let i = 0; i < costs.length; i++) {
      const reply = await redis.call("RL.HIT", key, LIMITS, "COST", String(costs[i]));
      const { status, headers } = rateLimitHeaders(reply);
      console.log(`# request ${i + 1}: RL.HIT ${key} ${LIMITS} COST ${costs[i]} -> ${reply.join(" ")}`);
      console.log(`HTTP/1.1 ${status}`);
      for (const [name, value] of headers) console.log(`${name}: ${value}`);
      console.log();
    }
    await redis.call("RL.CLEAR", key);
  } finally {
    redis.disconnect();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
