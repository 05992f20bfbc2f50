"""Typed refusals of identity that more than one adapter answers with."""

from __future__ import annotations

from quartermaster.core.errors import PermissionDenied


class DeviceNotYours(PermissionDenied):
    """The device id is owned by another user: nobody else logs in or syncs as it."""

    code = "device_not_yours"

    def __init__(self) -> None:
        super().__init__("this device id belongs to another user")


class DeviceMismatch(PermissionDenied):
    """The token was issued for one device and is used to sync as another."""

    code = "device_mismatch"

    def __init__(self, token_device: str) -> None:
        super().__init__(
            f"this token was issued for device {token_device!r} and syncs only as it",
            fields={"device_id": f"must be {token_device!r}, the device this token was issued for"},
        )
