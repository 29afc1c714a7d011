//! A STOMP 1.2 client for ActiveMQ (stub: being written).
