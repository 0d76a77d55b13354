"""A web page for training, generating and evaluating IP-Adapters.

    python tools/webui.py [--host 127.0.0.1] [--port 7860]
                          [--workspace work_dirs/webui] [--auth USER:PASSWORD]

Data (upload images, edit captions, per-image checks), Train (tools/train.py
in a subprocess: progress, loss curve, samples, Stop, Resume), Generate
(IPAdapterInferencer), Evaluate (tools/test.py), Files (tools/convert.py).
Every file the page reads or writes is inside the workspace. Needs the
``webui`` extra: ``pip install -r requirements/webui.txt``.

Served beyond this machine (``--host 0.0.0.0`` or any non-local address),
the page needs ``--auth USER:PASSWORD`` (Gradio's login): whoever reaches it
can train, generate and read the workspace.
"""

import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--host', default='127.0.0.1', help='address to bind (default: localhost only)'
    )
    parser.add_argument(
        '--port', type=int, default=7860, help='port to serve on (default: 7860)'
    )
    parser.add_argument(
        '--workspace',
        default='work_dirs/webui',
        help='the folder the page reads and writes (default: work_dirs/webui)',
    )
    parser.add_argument(
        '--auth',
        metavar='USER:PASSWORD',
        help="a login for the page (Gradio's auth); needed with a --host other "
        'than localhost (default: none, for localhost only)',
    )
    args = parser.parse_args()
    if args.auth is not None:
        user, _, password = args.auth.partition(':')
        if not user or not password:
            refuse('--auth: give USER:PASSWORD, both non-empty')
        args.auth = (user, password)
    elif args.host not in LOCAL_HOSTS:
        refuse(
            f'--host {args.host} serves the page to the network, where anyone '
            'who reaches it can train, generate and read the workspace: give '
            '--auth USER:PASSWORD, or leave --host at 127.0.0.1'
        )
    return args


LOCAL_HOSTS = ('127.0.0.1', 'localhost', '::1')


def refuse(message: str) -> None:
    """One line and exit 2, as the kit's other tools do."""
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)


def main() -> None:
    args = parse_args()  # before any heavy import: --help answers at once
    try:
        import gradio  # noqa: F401
    except ImportError:
        sys.exit(
            'error: the web UI needs Gradio (pip install -c '
            'requirements/constraints.txt -r requirements/webui.txt)'
        )
    if osp.isdir(osp.join(REPO, 'diffengine_ipa')):
        sys.path.insert(0, REPO)  # a checkout: its package, tools and data
    from diffengine_ipa.webui.server import serve

    serve(args.workspace, args.host, args.port, args.auth)


if __name__ == '__main__':
    main()
