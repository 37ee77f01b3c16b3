"""faustapp: real-time stream analytics on Faust with event-time windows."""

__version__ = "0.1.0"
