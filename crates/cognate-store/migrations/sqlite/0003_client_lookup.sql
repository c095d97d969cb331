-- Public operations name an app client by ClientId alone.
CREATE INDEX app_clients_by_client_id ON app_clients (client_id);
