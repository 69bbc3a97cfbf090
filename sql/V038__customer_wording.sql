-- Orderly: what a customer's e-mail says in its own words, per language. A German order.status
-- e-mail read "hat den Status: Confirmed" and "Track your parcel: …": the status labels
-- (order_statuses.customer_label) and the tracking line were English only. English stays where it
-- is; a language's wording is a row here (German ships), used when the e-mail's template is in
-- that language.
CREATE TABLE orderly.customer_wording (
    key      text NOT NULL CONSTRAINT customer_wording_key_format CHECK (key ~ '^(status\.[a-z_]+|tracking_link)$'),
    language text NOT NULL CONSTRAINT customer_wording_language_format CHECK (language ~ '^[a-z]{2}$'),
    text     text NOT NULL CONSTRAINT customer_wording_text_check
             CHECK (length(btrim(text)) BETWEEN 1 AND 200 AND text !~ '[[:cntrl:]]'),
    CONSTRAINT customer_wording_pkey PRIMARY KEY (key, language)
);

COMMENT ON TABLE orderly.customer_wording IS
    'Wording of customer e-mails in a language other than English: status.<code> (a status label), tracking_link (before the tracking URL)';

INSERT INTO orderly.customer_wording (key, language, text) VALUES
    ('status.submitted', 'de', 'Eingegangen'),
    ('status.pending_approval', 'de', 'In Prüfung'),
    ('status.approved', 'de', 'Bestätigt'),
    ('status.rejected', 'de', 'Nicht angenommen'),
    ('status.in_production', 'de', 'In Fertigung'),
    ('status.ready', 'de', 'Versandbereit'),
    ('status.partially_shipped', 'de', 'Teilweise versandt'),
    ('status.shipped', 'de', 'Versandt'),
    ('status.delivered', 'de', 'Zugestellt'),
    ('status.completed', 'de', 'Abgeschlossen'),
    ('status.cancelled', 'de', 'Storniert'),
    ('status.on_hold', 'de', 'Angehalten'),
    ('tracking_link', 'de', 'Sendungsverfolgung:');
