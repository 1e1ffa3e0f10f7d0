"""placeholder"""
KNOWN_ENCODERS = {"e5-small": None}


def prepare(name, out=None, progress=print):
    raise NotImplementedError
