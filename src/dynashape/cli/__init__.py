"""The ``dynashape`` command. It only calls the public library (see :mod:`dynashape`)."""
