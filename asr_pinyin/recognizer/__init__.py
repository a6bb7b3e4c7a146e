"""The recognizer: one API for every caller (server, CLI, tests). See recognizer.py."""
from .endpoint import EndpointConfigError, EndpointRules
from .recognizer import Recognizer, RecognizerOptions
from .stream import RecognizerError, Stream, StreamConfigError, StreamOptions, StreamStateError
from .resample import AudioFormatError
from .results import Char, Final, Partial, StreamError, Syllable

__all__ = ["AudioFormatError", "Char", "EndpointConfigError", "EndpointRules", "Final", "Partial",
           "Recognizer", "RecognizerError", "RecognizerOptions", "Stream", "StreamConfigError",
           "StreamError", "StreamOptions", "StreamStateError", "Syllable"]
