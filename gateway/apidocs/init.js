// The gateway's own OpenAPI document, browsed with Swagger UI (vendored: swagger-ui-dist 5.35.0).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#api", deepLinking: true });
