package web

// portalRoutes is the portal, SPEC §4: My Settings → Webhooks. It is kept
// apart from routes(), the API, whose table the OpenAPI document mirrors.
// Pages are GETs and change nothing; every change is a POST, refused with
// 403 when it comes from another site, and answered with a redirect (303)
// to the page that shows its result.
func (s *Server) portalRoutes() []portalRoute {
	return []portalRoute{
		{"GET", "/{$}", guest, s.handleHome},
		{"GET", "/static/{name}", asset, s.handleStatic},

		{"GET", "/login", guest, s.handleLoginForm},
		{"POST", "/login", guest, s.handleLogin},
		{"POST", "/logout", guest, s.handleLogout},

		{"GET", "/settings", member, s.handleSettings},
		{"GET", "/settings/webhooks", member, s.handleWebhookList},
		{"GET", "/settings/webhooks/new", member, s.handleNewWebhookForm},
		{"POST", "/settings/webhooks/new", member, s.handleAddWebhook},
		{"GET", "/settings/webhooks/{id}", member, s.handleWebhookPage},
		{"POST", "/settings/webhooks/{id}", member, s.handleEditWebhook},
		{"POST", "/settings/webhooks/{id}/active", member, s.handleSetActive},
		{"POST", "/settings/webhooks/{id}/enable", member, s.handleEnableForm},
		{"GET", "/settings/webhooks/{id}/delete", member, s.handleDeleteForm},
		{"POST", "/settings/webhooks/{id}/delete", member, s.handleConfirmDelete},
		{"POST", "/settings/webhooks/{id}/ping", member, s.handleSendPing},
		{"GET", "/settings/webhooks/{id}/deliveries/{delivery_id}", member, s.handleDeliveryPage},
		{"POST", "/settings/webhooks/{id}/deliveries/{delivery_id}/redeliver", member, s.handleRedeliverForm},
	}
}
