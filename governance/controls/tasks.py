"""Background tasks of the control catalog: the daily metric snapshot."""
