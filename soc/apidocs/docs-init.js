// Starts Swagger UI on the page; a file of its own because the CSP forbids inline scripts.
window.ui = SwaggerUIBundle({
  url: "{openapi}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
