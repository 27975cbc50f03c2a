-- Terminal locations and readers of each organisation, and the Tap to Pay device rules (data, not code).
CREATE TABLE locations (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    display_name text NOT NULL,
    line1 text NOT NULL,
    line2 text NOT NULL DEFAULT '',
    city text NOT NULL,
    postal_code text NOT NULL,
    country text NOT NULL,
    state text NOT NULL DEFAULT '',
    stripe_location_id text NOT NULL UNIQUE,
    -- The connected account the location lives on (direct charges); NULL when on the platform.
    stripe_account_id text,
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX locations_organization_idx ON locations (organization_id, created_at, id);
CREATE UNIQUE INDEX locations_one_default ON locations (organization_id) WHERE is_default;

CREATE TABLE readers (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    location_id uuid NOT NULL REFERENCES locations (id),
    label text NOT NULL,
    stripe_reader_id text NOT NULL UNIQUE,
    stripe_account_id text,
    device_type text NOT NULL DEFAULT '',
    serial_number text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
    last_seen_at timestamptz,
    -- When the status last changed at Stripe (the event's `created`): older events never overwrite it.
    status_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX readers_organization_idx ON readers (organization_id, created_at, id);

CREATE TABLE android_devices (
    model_identifier text PRIMARY KEY,
    manufacturer text NOT NULL DEFAULT '',
    marketing_name text NOT NULL DEFAULT '',
    min_os_version text NOT NULL,
    certified boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX android_devices_model_key ON android_devices (lower(model_identifier));

-- Minimum OS version per platform and country; country '*' is the platform's global floor.
CREATE TABLE os_floors (
    platform text NOT NULL CHECK (platform IN ('ios', 'android')),
    country text NOT NULL,
    min_os_version text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, country)
);

-- Tap to Pay on iPhone availability (Stripe, 2025): iOS 16.7+ in US/AU/GB, 17.0+ in much of the EU and NZ,
-- 17.4+ in CA/FI/PT/CH.
INSERT INTO os_floors (platform, country, min_os_version) VALUES
    ('ios', 'US', '16.7'), ('ios', 'AU', '16.7'), ('ios', 'GB', '16.7'),
    ('ios', 'FR', '17.0'), ('ios', 'DE', '17.0'), ('ios', 'IE', '17.0'), ('ios', 'IT', '17.0'),
    ('ios', 'NL', '17.0'), ('ios', 'AT', '17.0'), ('ios', 'CZ', '17.0'), ('ios', 'NZ', '17.0'),
    ('ios', 'PL', '17.0'), ('ios', 'SE', '17.0'),
    ('ios', 'CA', '17.4'), ('ios', 'FI', '17.4'), ('ios', 'PT', '17.4'), ('ios', 'CH', '17.4'),
    -- Android 13+ for the current Terminal SDK.
    ('android', '*', '13');

-- A starting list of NFC phones with hardware-backed keystores and Google Mobile Services
-- (Build.MODEL values); platform admins keep it current through the API.
INSERT INTO android_devices (model_identifier, manufacturer, marketing_name, min_os_version) VALUES
    ('Pixel 6', 'Google', 'Pixel 6', '13'),
    ('Pixel 6 Pro', 'Google', 'Pixel 6 Pro', '13'),
    ('Pixel 6a', 'Google', 'Pixel 6a', '13'),
    ('Pixel 7', 'Google', 'Pixel 7', '13'),
    ('Pixel 7 Pro', 'Google', 'Pixel 7 Pro', '13'),
    ('Pixel 7a', 'Google', 'Pixel 7a', '13'),
    ('Pixel 8', 'Google', 'Pixel 8', '14'),
    ('Pixel 8 Pro', 'Google', 'Pixel 8 Pro', '14'),
    ('Pixel 8a', 'Google', 'Pixel 8a', '14'),
    ('Pixel 9', 'Google', 'Pixel 9', '14'),
    ('Pixel 9 Pro', 'Google', 'Pixel 9 Pro', '14'),
    ('SM-S901B', 'Samsung', 'Galaxy S22', '13'),
    ('SM-S906B', 'Samsung', 'Galaxy S22+', '13'),
    ('SM-S908B', 'Samsung', 'Galaxy S22 Ultra', '13'),
    ('SM-S911B', 'Samsung', 'Galaxy S23', '13'),
    ('SM-S916B', 'Samsung', 'Galaxy S23+', '13'),
    ('SM-S918B', 'Samsung', 'Galaxy S23 Ultra', '13'),
    ('SM-S921B', 'Samsung', 'Galaxy S24', '14'),
    ('SM-S926B', 'Samsung', 'Galaxy S24+', '14'),
    ('SM-S928B', 'Samsung', 'Galaxy S24 Ultra', '14'),
    ('SM-A546B', 'Samsung', 'Galaxy A54 5G', '13'),
    ('SM-A556B', 'Samsung', 'Galaxy A55 5G', '14');
