import { defineConfig } from "vite";

// The hub serves the build from hub/agent_console/static at /console/.
export default defineConfig({
  base: "/console/",
  build: { outDir: "../static", emptyOutDir: true, sourcemap: true },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/socket.io": { target: "http://127.0.0.1:8080", ws: true } } },
});
