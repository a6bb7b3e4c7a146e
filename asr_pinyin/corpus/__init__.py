"""Text corpus builder: the text sources -> cleaned, labelled, de-duplicated JSONL splits."""
