"""SemMiner: hierarchical caption mining ("rein-then-expand") through an OpenAI-compatible MLLM server."""

# How the captions job reaches its server, not what the server answers (the per-clip answer cache does not key on
# them either): rule captions keeps them out of its params, so that a new address, key variable or retry policy
# reruns nothing, and its script takes them from the config.
CONNECTION_KEYS = ("in_flight", "attempts", "backoff_s", "max_backoff_s", "timeout_s")
SERVER_CONNECTION_KEYS = ("base_url", "api_key_env", "startup_timeout_s")


def without_connection(settings: dict) -> dict:
    """captions.semminer less its connection settings: what decides the captions."""
    server = {key: value for key, value in settings["server"].items() if key not in SERVER_CONNECTION_KEYS}
    return {**{key: value for key, value in settings.items() if key not in CONNECTION_KEYS}, "server": server}


def without_unused(settings: dict) -> dict:
    """`settings` (from `without_connection`) less the keys its modes leave unread: the launch command of a server
    reached by URL, the video frame rate when frames go as images and the JPEG quality when they go as a video."""
    server = dict(settings["server"])
    if server["mode"] != "launch":
        del server["command"]
    unread = "jpeg_quality" if settings["frames"]["mode"] == "video" else "video_fps"
    frames = {key: value for key, value in settings["frames"].items() if key != unread}
    return {**settings, "server": server, "frames": frames}


def with_connection(settings: dict, section: dict) -> dict:
    """`settings` (from `without_connection`) with the connection settings of `section` (captions.semminer)."""
    server = {**settings["server"], **{key: section["server"][key] for key in SERVER_CONNECTION_KEYS}}
    return {**settings, **{key: section[key] for key in CONNECTION_KEYS}, "server": server}
