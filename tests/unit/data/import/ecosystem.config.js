module.exports = {
  apps: [{
    name: "api",
    script: "./dist/server.js",
    instances: "max",
    env: { NODE_ENV: "production" }
  }]
}
