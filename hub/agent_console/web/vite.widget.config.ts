import { defineConfig } from "vite";

// The chat widget: one self-contained script (socket.io-client inside) that sites embed,
// served by the hub at /webchat/widget.js. Built after the console, into the same folder.
export default defineConfig({
  build: {
    outDir: "../static/widget",
    emptyOutDir: true,
    sourcemap: true,
    lib: { entry: "src/widget/widget.ts", name: "HubChat", formats: ["iife"], fileName: () => "widget.js" },
  },
});
