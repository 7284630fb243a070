"""Hypervisor drivers, chosen per host by name (Host.driver)."""

from importlib import import_module

from compute.drivers.base import ComputeDriver

# name → "module:Class"; a driver's module is imported only when a host uses it (libvirt-python is optional).
DRIVERS = {
    "simulated": "compute.drivers.simulated:SimulatedDriver",
    "libvirt": "compute.drivers.libvirt:LibvirtDriver",
}


def driver_for(host) -> ComputeDriver:
    module_name, class_name = DRIVERS[host.driver].split(":")
    driver_class = getattr(import_module(module_name), class_name)
    return driver_class(host)
