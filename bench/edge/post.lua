-- wrk script for bench/edge/run: POST a 447-byte WhatsApp text-message webhook.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Kerry"},"wa_id":"16315551234"}],"messages":[{"from":"16315551234","id":"wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzQTRBNjU5OUFF","timestamp":"1603059201","text":{"body":"Hi"},"type":"text"}]},"field":"messages"}]}]}'
