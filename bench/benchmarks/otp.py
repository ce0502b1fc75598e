from bench.harness import NotAvailable


def run(ctx):
    raise NotAvailable("todo")
