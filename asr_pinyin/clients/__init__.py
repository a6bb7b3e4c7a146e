"""Clients of the recognizer: offline file transcription, live microphone dictation, websocket client."""
