"""Serve the page: Gradio's uploads kept in the workspace, no analytics, no
share link, on localhost unless told otherwise."""

import os
import os.path as osp

from ..errors import UserError
from .workspace import Workspace

__all__ = ['serve']


def serve(
    workspace: str,
    host: str = '127.0.0.1',
    port: int = 7860,
    auth: tuple[str, str] | None = None,
) -> None:
    """Build the page on ``workspace`` and serve it until interrupted;
    ``auth`` (user, password) is Gradio's login, required off localhost."""
    if auth is None and host not in ('127.0.0.1', 'localhost', '::1'):
        raise UserError(
            f'serving on {host} needs a login: give auth=(user, password) '
            '(tools/webui.py --auth USER:PASSWORD)'
        )
    ws = Workspace(workspace)
    # Read by Gradio at import: uploads land inside the workspace, where
    # the page's path checks accept them.
    os.environ['GRADIO_TEMP_DIR'] = osp.join(ws.root, '.gradio')
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
    os.environ.setdefault('HF_HUB_DISABLE_TELEMETRY', '1')
    from .page import CSS, build_page

    demo = build_page(ws)
    demo.queue().launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        allowed_paths=[ws.root],
        css=CSS,
        ssr_mode=False,
        show_error=True,
        quiet=False,
    )
