-- Warehouse layers (see DESIGN.md): raw (as read) → core (typed, normalised) → fits → plans; meta.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS fits;
CREATE SCHEMA IF NOT EXISTS plans;
CREATE SCHEMA IF NOT EXISTS meta;
