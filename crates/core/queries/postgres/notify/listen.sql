-- The wake-up connection's subscription to the schema's channel (taskito_<schema>). A channel
-- cannot be a parameter: the store puts the name, lowercase letters, digits and _ only, where
-- the placeholder in braces is.
LISTEN "{channel}";
