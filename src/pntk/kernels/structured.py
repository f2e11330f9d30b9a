"""placeholder"""
def kernel(*a, **k):
    raise NotImplementedError
def make_plan(*a, **k):
    raise NotImplementedError
