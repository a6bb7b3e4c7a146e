"""Voice enrollment: read prompts, check takes, adapt the acoustic model to one voice."""
