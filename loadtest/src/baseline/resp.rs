//! Just enough of the Redis protocol (RESP2) for the baseline: send
//! commands, pipelined or not, and read their replies. A few dozen lines
//! keep a Redis client crate out of the build.

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

pub struct Connection {
    stream: BufReader<TcpStream>,
    out: Vec<u8>,
}

impl Connection {
    pub async fn connect(address: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to redis at {address}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            out: Vec::new(),
        })
    }

    /// Queue one command; `flush` sends everything queued.
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.out
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            let arg = arg.as_ref();
            self.out
                .extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            self.out.extend_from_slice(arg);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Send what is queued and read `replies` replies; a Redis error fails.
    pub async fn flush(&mut self, replies: usize) -> anyhow::Result<Vec<Reply>> {
        self.stream.get_mut().write_all(&self.out).await?;
        self.out.clear();
        let mut answers = Vec::with_capacity(replies);
        for _ in 0..replies {
            answers.push(self.read().await?);
        }
        Ok(answers)
    }

    /// One command, one reply.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> anyhow::Result<Reply> {
        self.queue(args);
        Ok(self.flush(1).await?.remove(0))
    }

    async fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            bail!("redis closed the connection");
        }
        Ok(line.trim_end_matches("\r\n").to_string())
    }

    fn read(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Reply>> + Send + '_>>
    {
        Box::pin(async move {
            let line = self.line().await?;
            let (kind, rest) = line.split_at(1.min(line.len()));
            Ok(match kind {
                "+" => Reply::Status(rest.to_string()),
                "-" => bail!("redis error: {rest}"),
                ":" => Reply::Integer(rest.parse()?),
                "$" => {
                    let len: i64 = rest.parse()?;
                    if len < 0 {
                        Reply::Bulk(None)
                    } else {
                        let mut bytes = vec![0; len as usize + 2];
                        self.stream.read_exact(&mut bytes).await?;
                        bytes.truncate(len as usize);
                        Reply::Bulk(Some(bytes))
                    }
                }
                "*" => {
                    let len: i64 = rest.parse()?;
                    let mut items = Vec::with_capacity(len.max(0) as usize);
                    for _ in 0..len.max(0) {
                        items.push(self.read().await?);
                    }
                    Reply::Array(items)
                }
                _ => bail!("unexpected redis reply {line:?}"),
            })
        })
    }
}
